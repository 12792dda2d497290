// Package scheduler is the built-in scheduler: many events per object on
// one alarm, delivered to webhooks.
//
// Each scheduler name is one object. Its events live in one SQL table,
// indexed by (run_at_ms, id) for listing and by the time of their next
// delivery attempt for the alarm, and the object's one alarm is always set
// to the earliest pending attempt. The alarm handler takes what is due
// (an indexed range query, a bounded batch), steps outside the input gate
// to POST the webhooks with bounded concurrency, and records the outcomes
// back inside the gate: a delivered one-shot event is deleted, a repeating
// one moves to its next slot, a failed delivery is retried with
// exponential backoff and jitter until MaxAttempts, then the event is
// marked failed. Nothing is marked delivered before its webhook answered
// 2xx, so a crash mid-delivery delivers again: at least once.
//
// docs/patterns/scheduler.md describes the design and every choice made
// where api.md leaves room.
package scheduler
