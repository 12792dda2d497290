// Package gateway is the HTTP front of `durable serve`: it authenticates,
// validates every input before an object is touched, routes requests to the
// built-in objects through their typed clients, and maps errors to the
// status codes and error codes of api.md in one table (errors.go).
package gateway

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/durableobjects/durable"
)

// Config configures a Gateway.
type Config struct {
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every /v1 request.
	Token string
	// Webhooks are the scheduler's delivery targets, by name.
	Webhooks map[string]string
	// Upstreams are the fetch routes' upstream base URLs, by name.
	Upstreams map[string]string
	// MaxBody is the request body limit; DefaultMaxBody if 0.
	MaxBody int64
	// Logger receives access logs and errors.
	Logger *slog.Logger
	// HTTPClient makes webhook and upstream requests; a client with
	// timeouts if nil.
	HTTPClient *http.Client
	// Classes are the application's own classes served under
	// /v1/objects/{class}/ (registered on the runtime by the caller).
	Classes []*durable.Namespace
}

// Gateway serves the HTTP API of api.md on a runtime.
type Gateway struct {
	rt      *durable.Runtime
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *metrics
	closers []func(ctx context.Context) error
}

// New registers the built-in classes on rt (which must not be open yet) and
// returns the gateway serving them and any classes already registered
// (under /v1/objects/).
func New(rt *durable.Runtime, cfg Config) (*Gateway, error) {
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	g := &Gateway{rt: rt, cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	g.metrics = newMetrics(rt)
	// GET only, HEAD included (api.md): ServeMux would answer HEAD too.
	g.mux.HandleFunc("GET /healthz", getOnly(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	g.mux.HandleFunc("GET /metrics", getOnly(g.metrics.handler().ServeHTTP))
	for _, setup := range []func() error{
		g.setupRateLimit,
		g.setupLocks,
		g.setupSessions,
		g.setupScheduler,
		g.setupFetch,
		g.setupDocs,
		g.setupObjects,
	} {
		if err := setup(); err != nil {
			return nil, err
		}
	}
	g.mux.HandleFunc("/", g.notFoundOrMethod)
	return g, nil
}

// BeginShutdown tells long-running requests (waiting lock acquires,
// WebSockets) that the server is going away.
func (g *Gateway) BeginShutdown() { g.rt.BeginClose() }

// Close releases what the gateway holds beyond HTTP requests (WebSockets).
func (g *Gateway) Close(ctx context.Context) error {
	var errs []error
	for _, c := range g.closers {
		errs = append(errs, c(ctx))
	}
	return errors.Join(errs...)
}

// handlerFunc is a route: it writes its answer, or returns an error for
// the error table to answer.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle registers a route.
func (g *Gateway) handle(pattern string, h handlerFunc) {
	g.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			g.writeError(w, r, err)
		}
	})
}

// writeError answers err and logs it if it is not a client's mistake.
func (g *Gateway) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e, known := toAPIError(err)
	if !known {
		g.log.Error("request failed", "id", requestID(r), "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeAPIError(w, e)
}

// getOnly answers a HEAD request 405, as for any method but GET.
func getOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", "GET")
			writeAPIError(w, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
				Message: r.Method + " is not allowed here; allowed: GET"})
			return
		}
		h(w, r)
	}
}

// getOnlyPaths are the paths served by getOnly handlers: their Allow is GET.
var getOnlyPaths = map[string]bool{"/healthz": true, "/metrics": true}

// notFoundOrMethod answers requests no route matched: 405 with Allow when
// the path exists for other methods, 400 when it lacks only a last path
// parameter ("DELETE /v1/sessions/"), else 404.
func (g *Gateway) notFoundOrMethod(w http.ResponseWriter, r *http.Request) {
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}
	if getOnlyPaths[r.URL.Path] {
		methods = methods[:1]
	}
	routed := func(path string, m string) bool {
		probe := r.Clone(r.Context())
		probe.Method = m
		probe.URL.Path, probe.URL.RawPath = path, ""
		_, pattern := g.mux.Handler(probe)
		return pattern != "/" && pattern != ""
	}
	var allow []string
	for _, m := range methods {
		if routed(r.URL.Path, m) {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 && strings.HasSuffix(r.URL.Path, "/") && r.URL.Path != "/" {
		for _, m := range methods {
			if routed(r.URL.Path+"x", m) {
				writeAPIError(w, invalid("path parameter is empty"))
				return
			}
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeAPIError(w, &Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Message: r.Method + " is not allowed here; allowed: " + strings.Join(allow, ", ")})
		return
	}
	writeAPIError(w, notFound("no route for %s", r.URL.Path))
}

// ServeHTTP implements http.Handler: request ID, panic recovery,
// authentication, routing, metrics and the access log.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := r.Header.Get("X-Request-Id")
	if !validRequestID(id) {
		id = newRequestID()
	}
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
	w.Header().Set("X-Request-Id", id)
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			g.log.Error("handler panicked", "id", id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if !sw.wroteHeader {
				writeAPIError(sw, &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"})
			}
		}
		route := r.Pattern
		if route == "" || route == "/" {
			route = "unmatched"
		}
		d := time.Since(start)
		g.metrics.observe(route, sw.status(), d)
		// LogAttrs would take the caller's PC (runtime.Callers) for every line; we never log the source.
		if ctx := r.Context(); g.log.Enabled(ctx, slog.LevelInfo) {
			rec := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
			rec.AddAttrs(slog.String("id", id), slog.String("method", r.Method),
				slog.String("path", r.URL.Path), slog.String("route", route), slog.Int("status", sw.status()),
				slog.Int64("bytes", sw.bytes), slog.Float64("duration_ms", float64(d.Microseconds())/1000))
			_ = g.log.Handler().Handle(ctx, rec)
		}
	}()
	// Any path that cleans to /v1 or under it ("//v1/x", "/./v1") needs the
	// token, even though it is refused below.
	if p := path.Clean(r.URL.Path); g.cfg.Token != "" && (p == "/v1" || strings.HasPrefix(p, "/v1/")) && !g.authorized(r) {
		writeAPIError(sw, &Error{Status: http.StatusUnauthorized, Code: "unauthorized", Message: "missing or wrong bearer token"})
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/") {
		// An absolute-form target with no path ("GET http://host"), which
		// the mux would redirect to "/", or OPTIONS's "*".
		writeAPIError(sw, notFound("no route for %q", r.RequestURI))
		return
	}
	if hasEmptyOrDotSegment(r.URL.EscapedPath()) {
		// The mux would redirect to a cleaned path (with an HTML body);
		// api.md wants a bad path parameter answered 400, and every error
		// in its JSON shape.
		writeAPIError(sw, invalid("path has an empty, \".\" or \"..\" segment"))
		return
	}
	g.mux.ServeHTTP(sw, r)
}

// hasEmptyOrDotSegment reports whether p (after its leading "/") has an
// empty segment (but a trailing "/"), or a "." or ".." segment.
func hasEmptyOrDotSegment(p string) bool {
	segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range segs {
		if (s == "" && i != len(segs)-1) || s == "." || s == ".." {
			return true
		}
	}
	return false
}

func (g *Gateway) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	const prefix = "Bearer "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(h[len(prefix):]), []byte(g.cfg.Token)) == 1
}

type requestIDKey struct{}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}

// newRequestID makes a request ID as api.md wants every ID the server
// makes: 128 random bits, 22 characters of base64url.
func newRequestID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validRequestID accepts a client's request ID if it is short and plain.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	code        int
	bytes       int64
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) status() int {
	if !w.wroteHeader {
		return http.StatusOK
	}
	return w.code
}

// Unwrap lets http.ResponseController reach the connection (WebSocket
// upgrades hijack it).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
