package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/durableobjects/durable"
)

// job is one delivery attempt, decided inside the gate.
type job struct {
	id      string
	gen     int64
	slot    int64 // the run_at_ms delivered
	repeat  int64 // 0 for a one-shot event
	payload json.RawMessage
	target  string
	attempt int // 1 for the first attempt of slot
}

// outcome is what became of a job outside the gate.
type outcome struct {
	tried   bool // false: not sent, or cut short by shutdown; nothing to record
	ok      bool
	firedAt int64
	err     string
}

// ended is a delivery that ended, with its outcome.
type ended struct {
	job job
	out outcome
}

// Alarm delivers the events that are due. Inside the gate it picks the due
// events; outside it, webhook requests run (other events of the scheduler
// run meanwhile); each outcome is recorded inside the gate as soon as its
// webhook answered. The run goes on while deliveries are in flight: an
// event that comes due meanwhile (a retry's backoff ended, or a PUT for
// now) is sent at once, not after the slowest request of the run. It ends,
// setting the alarm to the next due event, when nothing is in flight and
// nothing more may be sent: nothing is due, a batch was sent, or the
// runtime is closing.
//
// The runtime keeps the alarm until this returns nil, and no outcome is
// recorded before its webhook answered, so a crash anywhere in between
// delivers again.
func (o *object) Alarm(ctx context.Context, _ durable.AlarmInfo) error {
	if !o.ready {
		return nil
	}
	// When the runtime begins to close, requests in flight are cut short
	// and no more are sent; their events stay due. Returning cuts them
	// too (after an error, the alarm runs again and sends them again).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-o.st.Closing():
			cancel()
		case <-ctx.Done():
		}
	}()
	var (
		name     = o.name
		inflight = map[string]bool{} // ids of the events being delivered
		done     = make(chan ended, o.cfg.concurrency)
		sent     = 0 // deliveries this run started; at most a batch
		changed  = make(chan struct{}, 1)
	)
	o.changed = changed
	defer func() { o.changed = nil }()
	for {
		var next int64 // when the earliest event not yet due comes due; 0 if none, or no slot is free
		if free := min(o.cfg.concurrency-len(inflight), o.cfg.batch-sent); free > 0 && ctx.Err() == nil {
			jobs, n, err := o.due(o.st.Now().UnixMilli(), inflight, free)
			if err != nil {
				return err
			}
			next = n
			for _, j := range jobs {
				inflight[j.id] = true
				sent++
				go func() { done <- ended{j, o.cfg.deliver(ctx, o.st.Now().UnixMilli(), name, j)} }()
			}
		}
		if len(inflight) == 0 {
			return o.rearm()
		}
		var got []ended
		clock := o.st.Clock()
		if err := o.st.OutsideGate(func() error {
			got = await(clock, done, changed, next)
			return nil
		}); err != nil {
			return err
		}
		// The alarm is recomputed once, when the run ends: while it runs,
		// the runtime does not fire it again, and an alarm set meanwhile
		// would be the time of a delivery still in flight (in the past),
		// which the runtime would fire again at once after the run, or,
		// after an error, instead of its retry with backoff.
		if err := o.st.Storage().Transaction(func() error {
			now := o.st.Now().UnixMilli()
			for _, e := range got {
				if err := o.record(e.job, e.out, now); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		for _, e := range got {
			delete(inflight, e.job.id)
		}
	}
}

// await waits for a delivery to end, for the events to change, or, if next
// is not 0, for the clock to reach next (ms); it returns every delivery
// that has ended.
func await(clock durable.Clock, done <-chan ended, changed <-chan struct{}, next int64) []ended {
	var due chan struct{}
	if next != 0 {
		due = make(chan struct{})
		t := clock.AfterFunc(time.Duration(next-clock.Now().UnixMilli())*time.Millisecond, func() { close(due) })
		defer t.Stop()
	}
	var got []ended
	select {
	case e := <-done:
		got = append(got, e)
	case <-changed:
	case <-due:
	}
	for {
		select {
		case e := <-done:
			got = append(got, e)
		default:
			return got
		}
	}
}

// due returns at most free deliveries due at now that are not in flight,
// earliest first, and when the earliest event not yet due comes due (0 if
// none). A repeating event whose slot passed more than a period ago (the
// server was down, or the scheduler busy) is delivered once, for its
// latest slot at or before now: a catch-up, not a burst. A retry stays
// with the slot whose delivery failed.
func (o *object) due(now int64, inflight map[string]bool, free int) ([]job, int64, error) {
	s := o.st.Storage()
	// The events in flight are due too: reading as many more rows as
	// there are free slots finds every due event that is not.
	cur, err := s.Exec(`SELECT id, gen, run_at_ms, repeat_ms, payload, target, attempts
		FROM events WHERE due_at_ms IS NOT NULL AND due_at_ms <= ? ORDER BY due_at_ms, id LIMIT ?`,
		now, len(inflight)+free)
	if err != nil {
		return nil, 0, err
	}
	var jobs []job
	for cur.Next() && len(jobs) < free {
		var j job
		var repeat, payload any
		if err := cur.Scan(&j.id, &j.gen, &j.slot, &repeat, &payload, &j.target, &j.attempt); err != nil {
			cur.Close()
			return nil, 0, err
		}
		if inflight[j.id] {
			continue
		}
		j.repeat, _ = repeat.(int64)
		if p, ok := payload.(string); ok {
			j.payload = json.RawMessage(p)
		}
		if j.repeat > 0 && j.attempt == 0 {
			j.slot = latestSlot(j.slot, j.repeat, now)
		}
		j.attempt++
		jobs = append(jobs, j)
	}
	if err := cur.Close(); err != nil {
		return nil, 0, err
	}
	cur, err = s.Exec(`SELECT due_at_ms FROM events WHERE due_at_ms > ? ORDER BY due_at_ms LIMIT 1`, now)
	if err != nil {
		return nil, 0, err
	}
	var next int64
	if err := cur.One(&next); err != nil && !errors.Is(err, durable.ErrNoRows) {
		return nil, 0, err
	}
	return jobs, next, nil
}

// record applies a delivery's outcome to its event, unless the event was
// replaced or deleted while the delivery was in flight.
func (o *object) record(j job, r outcome, now int64) error {
	if !r.tried {
		return nil // still due: the next alarm run (or the next start) tries it
	}
	s := o.st.Storage()
	var err error
	switch {
	case r.ok && j.repeat == 0:
		_, err = s.Exec(`DELETE FROM events WHERE id = ? AND gen = ?`, j.id, j.gen)
	case r.ok:
		next := nextSlot(j.slot, j.repeat, now)
		_, err = s.Exec(`UPDATE events SET run_at_ms = ?1, due_at_ms = ?1, attempts = 0, last_fired_at_ms = ?2
			WHERE id = ?3 AND gen = ?4`, next, r.firedAt, j.id, j.gen)
	case j.attempt >= MaxAttempts:
		_, err = s.Exec(`UPDATE events SET run_at_ms = ?1, state = 'failed', due_at_ms = NULL, attempts = ?2,
			last_fired_at_ms = ?3, last_error = ?4 WHERE id = ?5 AND gen = ?6`,
			j.slot, j.attempt, r.firedAt, r.err, j.id, j.gen)
	default:
		retry := now + backoff(j.attempt).Milliseconds()
		_, err = s.Exec(`UPDATE events SET run_at_ms = ?1, due_at_ms = ?2, attempts = ?3,
			last_fired_at_ms = ?4, last_error = ?5 WHERE id = ?6 AND gen = ?7`,
			j.slot, retry, j.attempt, r.firedAt, r.err, j.id, j.gen)
	}
	return err
}

// latestSlot returns the latest runAt + k·repeat (k ≥ 0) at or before now,
// or runAt if it is still ahead.
func latestSlot(runAt, repeat, now int64) int64 {
	if now <= runAt {
		return runAt
	}
	return runAt + (now-runAt)/repeat*repeat
}

// nextSlot returns the first slot + k·repeat (k ≥ 1) after now.
func nextSlot(slot, repeat, now int64) int64 {
	if now < slot {
		return slot + repeat
	}
	return slot + ((now-slot)/repeat+1)*repeat
}

// backoff returns the wait after the failed attempt number attempt (from
// 1): RetryInitial doubled for each earlier failure, at most RetryMax,
// plus up to 25 % jitter.
func backoff(attempt int) time.Duration {
	d := RetryMax
	if attempt-1 < 20 {
		d = min(RetryInitial<<(attempt-1), RetryMax)
	}
	return d + rand.N(d/4+1)
}

// delivery is the body of a webhook request (api.md).
type delivery struct {
	Scheduler string          `json:"scheduler"`
	ID        string          `json:"id"`
	RunAtMS   int64           `json:"run_at_ms"`
	FiredAtMS int64           `json:"fired_at_ms"`
	Attempt   int             `json:"attempt"`
	Payload   json.RawMessage `json:"payload"`
}

// deliver posts one job to its webhook.
func (cfg *config) deliver(ctx context.Context, firedAt int64, name string, j job) outcome {
	r := outcome{tried: true, firedAt: firedAt}
	target, ok := cfg.targets[j.target]
	if !ok {
		r.err = fmt.Sprintf("webhook target %q is not configured", j.target)
		return r
	}
	body, err := json.Marshal(delivery{Scheduler: name, ID: j.id, RunAtMS: j.slot, FiredAtMS: firedAt, Attempt: j.attempt, Payload: j.payload})
	if err != nil {
		r.err = "encoding the delivery: " + err.Error()
		return r
	}
	rctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		r.err = "building the request: " + err.Error()
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", IdempotencyKey(name, j.id, j.slot))
	req.Header.Set("User-Agent", "durable-scheduler")
	resp, err := cfg.http.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return outcome{} // shutting down: not an attempt
		case errors.Is(err, context.DeadlineExceeded):
			r.err = fmt.Sprintf("no answer within %v", cfg.timeout)
		default:
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // without the URL, which may carry a secret
			}
			r.err = "request failed: " + err.Error()
		}
		return r
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		r.ok = true
		return r
	}
	r.err = "webhook answered " + resp.Status
	return r
}

// IdempotencyKey returns the Idempotency-Key header of a delivery:
// name:id:runAtMS, with every byte of name and id outside A-Z a-z 0-9 - . _ ~
// percent-encoded in upper-case hex (so neither holds a ':').
func IdempotencyKey(name, id string, runAtMS int64) string {
	var b strings.Builder
	escapeKeyPart(&b, name)
	b.WriteByte(':')
	escapeKeyPart(&b, id)
	b.WriteByte(':')
	b.WriteString(strconv.FormatInt(runAtMS, 10))
	return b.String()
}

func escapeKeyPart(b *strings.Builder, s string) {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
}
