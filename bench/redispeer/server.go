package redispeer

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config holds the optional settings of a Server.
type Config struct {
	// Token, if set, is required as "Authorization: Bearer <Token>" on every
	// /v1 request.
	Token string
	// Logger receives internal errors; nil discards them.
	Logger *slog.Logger
	// Now is the clock for session timestamps; nil means time.Now. Rate
	// limits and locks use Redis's clock.
	Now func() time.Time
}

// Server answers the api.md rate-limit, lock and session routes from Redis.
// It is an http.Handler.
type Server struct {
	rdb  *redis.Client
	cfg  Config
	log  *slog.Logger
	stop context.Context // done once Shutdown is called
	halt context.CancelFunc
}

// New returns a Server that stores everything in rdb.
func New(rdb *redis.Client, cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	stop, halt := context.WithCancel(context.Background())
	return &Server{rdb: rdb, cfg: cfg, log: log, stop: stop, halt: halt}
}

// Shutdown makes waiting lock acquires give up with 503 unavailable. Call it
// before http.Server.Shutdown so that in-flight requests can finish.
func (s *Server) Shutdown() { s.halt() }

type handler func(w http.ResponseWriter, r *http.Request, params []string) error

// route finds the handler of a /v1 path split into escaped segments, and
// which of the segments are parameters.
func (s *Server) route(method string, segs []string) (handler, []int, error) {
	type methods map[string]handler
	var ms methods
	var params []int
	switch {
	case len(segs) == 3 && segs[0] == "ratelimit" && segs[2] == "check":
		ms, params = methods{"POST": s.rateLimitCheck}, []int{1}
	case len(segs) == 3 && segs[0] == "locks" && segs[2] == "acquire":
		ms, params = methods{"POST": s.lockAcquire}, []int{1}
	case len(segs) == 3 && segs[0] == "locks" && segs[2] == "renew":
		ms, params = methods{"POST": s.lockRenew}, []int{1}
	case len(segs) == 3 && segs[0] == "locks" && segs[2] == "release":
		ms, params = methods{"POST": s.lockRelease}, []int{1}
	case len(segs) == 2 && segs[0] == "locks":
		ms, params = methods{"GET": s.lockStatus}, []int{1}
	case len(segs) == 1 && segs[0] == "sessions":
		ms = methods{"POST": s.sessionCreate}
	case len(segs) == 2 && segs[0] == "sessions":
		ms, params = methods{"GET": s.sessionGet, "PATCH": s.sessionPatch, "DELETE": s.sessionDelete}, []int{1}
	case len(segs) == 3 && segs[0] == "users" && segs[2] == "sessions":
		ms, params = methods{"GET": s.userSessions, "DELETE": s.userRevoke}, []int{1}
	default:
		return nil, nil, errNotFound("no such route")
	}
	if h, ok := ms[method]; ok {
		return h, params, nil
	}
	var allow []string
	for _, m := range []string{"GET", "POST", "PATCH", "DELETE"} {
		if ms[m] != nil {
			allow = append(allow, m)
		}
	}
	return nil, nil, errMethod(strings.Join(allow, ", "))
}

// ServeHTTP authenticates, routes, validates path parameters and maps the
// handler's error to the api.md error shape.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := s.serve(w, r); err != nil {
		ae, ok := errors.AsType[*apiError](err)
		if !ok {
			if s.stop.Err() != nil && errors.Is(err, context.Canceled) {
				ae = errUnavailable
			} else {
				s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
				ae = &apiError{status: http.StatusInternalServerError, code: "internal", message: "internal error"}
			}
		}
		writeError(w, ae)
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) error {
	path := r.URL.EscapedPath()
	if path == "/healthz" {
		if r.Method != http.MethodGet {
			return errMethod("GET")
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	}
	rest, ok := strings.CutPrefix(path, "/v1/")
	if !ok {
		return errNotFound("no such route")
	}
	if s.cfg.Token != "" {
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.cfg.Token)) != 1 {
			return &apiError{status: http.StatusUnauthorized, code: "unauthorized", message: "missing or wrong bearer token"}
		}
	}
	segs := strings.Split(rest, "/")
	h, idx, err := s.route(r.Method, segs)
	if err != nil {
		return err
	}
	params := make([]string, len(idx))
	for i, j := range idx {
		v, err := url.PathUnescape(segs[j])
		if err != nil {
			return errInvalid("bad path parameter: %v", err)
		}
		if err := checkParam("path parameter", v); err != nil {
			return err
		}
		params[i] = v
	}
	return h(w, r, params)
}

// newToken returns 128 random bits, base64url without padding (22 chars).
func newToken() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
