package dedup

import (
	"context"
	"net/http"
	"strings"

	"github.com/durableobjects/durable"
)

// fetcher is the object of one (upstream, path, query) key. It keeps only
// the requests in flight, in memory, and never writes storage: an idle
// fetcher is evicted with nothing lost, and never gets a database file.
type fetcher struct {
	st      *durable.State
	c       *Client
	flights map[string]*flight // by target URL; touched only inside the gate
}

// flight is one upstream request and the callers waiting for it.
type flight struct {
	done    chan struct{} // closed once res or err is set
	res     *upstreamResponse
	err     error
	waiters int // callers between joining and leaving; inside the gate
}

func (f *flight) finished() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// ServeHTTP answers the Client's requests (anything else gets a 404). The
// first caller of a key starts the upstream request; callers that arrive
// while it is in flight join it. Everyone waits outside the input gate, so
// the object keeps taking callers (and other events) meanwhile; each then
// gets its own copy of the response. A flight that has finished is never
// joined: the next caller starts a new upstream request, so nothing is
// cached.
func (o *fetcher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get(secretHeader) != o.c.secret || r.URL.Host == "" {
		http.NotFound(w, r)
		return
	}
	target := r.URL.String()
	fl := o.flights[target]
	leader := fl == nil || fl.finished()
	if leader {
		fl = &flight{done: make(chan struct{})}
		o.flights[target] = fl
	}
	fl.waiters++
	ctx := r.Context()
	ran := false
	err := o.st.OutsideGate(func() error {
		ran = true
		if leader {
			// The upstream request serves every caller that joins: it must
			// not end when the first caller goes away.
			func() {
				defer close(fl.done)
				uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.c.timeout)
				defer cancel()
				fl.res, fl.err = o.c.get(uctx, target)
			}()
		} else {
			select {
			case <-fl.done:
			case <-ctx.Done():
				return ctx.Err() // this caller left; the others carry on
			}
		}
		writeResponse(w, fl)
		return nil
	})
	// Back inside the gate.
	if leader && !ran {
		// OutsideGate failed before fn ran (the object was reset): release
		// whoever joined.
		fl.err = err
		close(fl.done)
	}
	fl.waiters--
	if fl.finished() && fl.waiters == 0 && o.flights[target] == fl {
		delete(o.flights, target)
	}
}

// writeResponse gives one caller its copy of a flight's outcome.
func writeResponse(w http.ResponseWriter, fl *flight) {
	if fl.err != nil {
		msg := strings.ReplaceAll(fl.err.Error(), "\n", " ")
		w.Header().Set(errorHeader, msg)
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	h := w.Header()
	for k, v := range fl.res.header {
		h[k] = append([]string(nil), v...)
	}
	w.WriteHeader(fl.res.status)
	w.Write(fl.res.body)
}

// Waiting returns how many callers wait on an upstream request.
func (o *fetcher) Waiting(ctx context.Context) (int, error) {
	n := 0
	for _, fl := range o.flights {
		n += fl.waiters
	}
	return n, nil
}
