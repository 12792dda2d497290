package gateway

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/durableobjects/durable/patterns/scheduler"
)

type schedulerPutRequest struct {
	RunAtMS  *int64          `json:"run_at_ms"`
	RepeatMS *int64          `json:"repeat_ms"`
	Payload  json.RawMessage `json:"payload"`
	Target   *string         `json:"target"`
}

// setupScheduler registers the scheduler routes of api.md.
func (g *Gateway) setupScheduler() error {
	sched, err := scheduler.Register(g.rt, scheduler.Options{Webhooks: g.cfg.Webhooks, Client: g.cfg.HTTPClient})
	if err != nil {
		return err
	}

	g.handle("PUT /v1/schedulers/{name}/events/{id}", func(w http.ResponseWriter, r *http.Request) error {
		name, id, err := schedulerEventParams(r)
		if err != nil {
			return err
		}
		var req schedulerPutRequest
		if err := decodeJSON(w, r, g.cfg.MaxBody, &req); err != nil {
			return err
		}
		switch {
		case req.RunAtMS == nil:
			return invalid("run_at_ms is required")
		case req.Target == nil:
			return invalid("target is required")
		}
		if err := rawJSONSize("payload", req.Payload, scheduler.MaxPayload); err != nil {
			return err
		}
		spec := scheduler.Spec{RunAtMS: *req.RunAtMS, RepeatMS: req.RepeatMS, Payload: req.Payload, Target: *req.Target}
		if err := sched.Validate(&spec); err != nil {
			if errors.Is(err, scheduler.ErrInvalid) {
				return invalid("%v", err)
			}
			return err
		}
		ev, err := sched.Put(r.Context(), name, id, spec)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, ev)
		return nil
	})

	g.handle("GET /v1/schedulers/{name}/events/{id}", func(w http.ResponseWriter, r *http.Request) error {
		name, id, err := schedulerEventParams(r)
		if err != nil {
			return err
		}
		ev, err := sched.Get(r.Context(), name, id)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, ev)
		return nil
	})

	g.handle("DELETE /v1/schedulers/{name}/events/{id}", func(w http.ResponseWriter, r *http.Request) error {
		name, id, err := schedulerEventParams(r)
		if err != nil {
			return err
		}
		if err := sched.Delete(r.Context(), name, id); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})

	g.handle("GET /v1/schedulers/{name}/events", func(w http.ResponseWriter, r *http.Request) error {
		name, err := pathParam(r, "name")
		if err != nil {
			return err
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return invalid("malformed query string")
		}
		limit := scheduler.DefaultListLimit
		if vs, ok := q["limit"]; ok {
			n, err := strconv.Atoi(vs[0])
			if len(vs) > 1 || err != nil || n < 1 || n > scheduler.MaxListLimit {
				return invalid("limit must be one integer in [1, %d]", scheduler.MaxListLimit)
			}
			limit = n
		}
		if len(q["cursor"]) > 1 {
			return invalid("cursor given more than once")
		}
		page, err := sched.List(r.Context(), name, limit, q.Get("cursor"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, page)
		return nil
	})
	return nil
}

// schedulerEventParams returns the {name} and {id} of an event route.
func schedulerEventParams(r *http.Request) (name, id string, err error) {
	if name, err = pathParam(r, "name"); err != nil {
		return "", "", err
	}
	if id, err = pathParam(r, "id"); err != nil {
		return "", "", err
	}
	return name, id, nil
}
