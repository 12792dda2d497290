package gateway

import (
	"net/http"

	"github.com/durableobjects/durable"
)

// setupObjects registers the "Your own objects" routes of api.md: requests
// under /v1/objects/{class}/... go to the HTTP handler (ServeHTTP) of an
// object of a class listed in Config.Classes, which sees the rest of the
// path ("/" + {path...}) and the query. The built-in classes are not
// reachable this way: their routes validate input first.
func (g *Gateway) setupObjects() error {
	classes := map[string]*durable.Namespace{}
	for _, ns := range g.cfg.Classes {
		classes[ns.Name()] = ns
	}
	forward := func(w http.ResponseWriter, r *http.Request, byID bool) error {
		class, err := pathParam(r, "class")
		if err != nil {
			return err
		}
		ns, ok := classes[class]
		if !ok {
			return notFound("no class %q", class)
		}
		var stub *durable.Stub
		if byID {
			id, err := ns.IDFromString(r.PathValue("id"))
			if err != nil {
				return invalid("%v", err)
			}
			stub = ns.Get(id)
		} else {
			name, err := pathParam(r, "name")
			if err != nil {
				return err
			}
			stub = ns.GetByName(name)
		}
		in := r.Clone(r.Context())
		in.URL.Path = "/" + r.PathValue("path")
		in.URL.RawPath = ""
		in.RequestURI = in.URL.RequestURI()
		in.Body = http.MaxBytesReader(w, r.Body, g.cfg.MaxBody)
		return stub.Handle(w, in)
	}
	byID := func(w http.ResponseWriter, r *http.Request) error { return forward(w, r, true) }
	byName := func(w http.ResponseWriter, r *http.Request) error { return forward(w, r, false) }
	g.handle("/v1/objects/{class}/id/{id}/{path...}", byID)
	g.handle("/v1/objects/{class}/{name}/{path...}", byName)
	// Without the slash after the object: its handler gets path "/", as with
	// it. ServeMux would otherwise redirect to the path with a slash, built
	// from the decoded path, so a name holding an escaped '/' ("a%2Fb")
	// would send the client to another object ("a", path "/b/").
	g.handle("/v1/objects/{class}/id/{id}", byID)
	g.handle("/v1/objects/{class}/{name}", byName)
	return nil
}
