package gateway

import (
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/durableobjects/durable/patterns/dedup"
)

// setupFetch registers the fetch routes of api.md.
func (g *Gateway) setupFetch() error {
	fetcher, err := dedup.Register(g.rt, dedup.Options{Upstreams: g.cfg.Upstreams, Client: g.cfg.HTTPClient})
	if err != nil {
		return err
	}
	h := func(w http.ResponseWriter, r *http.Request) error {
		upstream, err := pathParam(r, "upstream")
		if err != nil {
			return err
		}
		if !fetcher.Known(upstream) {
			return notFound("unknown upstream %q", upstream)
		}
		path := fetchPath(r)
		if err := dedup.CheckPath(path); err != nil {
			return invalid("%v", err)
		}
		resp, err := fetcher.Fetch(r.Context(), upstream, path, r.URL.RawQuery)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		h := w.Header()
		for k, v := range resp.Header {
			h[k] = v
		}
		if _, ok := resp.Header["Content-Type"]; !ok {
			h["Content-Type"] = nil // forward "none" as none: no sniffing
		}
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		return nil
	}
	g.handle("GET /v1/fetch/{upstream}/{path...}", h)
	// Without the slash after the upstream: the same as with it (the base
	// URL and '/'), rather than ServeMux's redirect.
	g.handle("GET /v1/fetch/{upstream}", h)
	return nil
}

// fetchPath returns the request's path after /v1/fetch/{upstream}/, as the
// client escaped it, so an escaped '/' stays inside its segment upstream.
func fetchPath(r *http.Request) string {
	p := strings.TrimPrefix(r.URL.EscapedPath(), "/v1/fetch/")
	i := strings.IndexByte(p, '/')
	if i < 0 {
		return ""
	}
	return p[i+1:]
}
