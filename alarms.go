package durable

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/durableobjects/durable/internal/actor"
	"github.com/durableobjects/durable/internal/alarm"
)

// Alarm retry policy: a failing handler runs again after 2 s, 4 s, 8 s …
// (plus up to 25 % jitter), at most AlarmMaxRetries times.
const (
	AlarmMaxRetries   = 6
	AlarmRetryInitial = 2 * time.Second
)

func alarmBackoff(retry int64) time.Duration {
	d := AlarmRetryInitial << min(retry, 9)
	return d + time.Duration(rand.Int64N(int64(d)/4+1))
}

// alarmNotDelivered ends a delivery that could not start. While the runtime
// closes, the entry stays as it is, so the next start fires it at once;
// otherwise it is tried again after AlarmRetryInitial.
func (rt *Runtime) alarmNotDelivered(k alarm.Key, at int64, err error) {
	next := at + int64(AlarmRetryInitial/time.Millisecond)
	if errors.Is(err, ErrClosed) {
		next = at
	}
	rt.sched.Done(k, at, next)
}

// fireAlarm is called by the scheduler when k's index entry, at, comes due.
func (rt *Runtime) fireAlarm(k alarm.Key, at int64) {
	ns, ok := rt.Namespace(k.NS)
	if !ok {
		// The class is not registered in this process: leave the entry for
		// a process that has it (it stays in flight until restart).
		rt.Logger.Warn("alarm for an unregistered class", "class", k.NS)
		return
	}
	run := &alarmRun{firedAt: at}
	var o *object
	var done <-chan error
	for {
		var err error
		if o, err = rt.lookup(ns, k.ID); err != nil {
			rt.alarmNotDelivered(k, at, err)
			return
		}
		// Until Done, the index entry may move under the object: its
		// SetAlarm calls must reach the scheduler, which keeps them
		// through Done (see indexAlarm).
		o.alarmsInFlight.Add(1)
		done, err = o.submit(context.Background(), true, run.run)
		if err != nil {
			o.alarmsInFlight.Add(-1)
		}
		if errors.Is(err, actor.ErrEvicted) {
			continue // evicted between lookup and enqueue: activate it again
		}
		if err != nil {
			rt.alarmNotDelivered(k, at, err)
			return
		}
		break
	}
	rt.alarmRuns.Add(1)
	go func() {
		defer rt.alarmRuns.Done()
		defer o.alarmsInFlight.Add(-1) // after Done and the reset of indexedAt
		err := <-done
		if err == nil {
			rt.sched.Done(k, at, run.next)
			o.indexedAt.Store(0)
			return
		}
		// The event failed as a whole (a panic, a failed commit, a
		// constructor that failed): record the failure as a retry in an
		// event of its own, which needs no instance.
		rt.Logger.Warn("alarm handler failed", "class", k.NS, "err", err)
		retry := &alarmRun{firedAt: at, orig: run.orig, read: run.read}
		done, err := o.submitBare(retry.recordFailure)
		if err == nil {
			err = <-done
		}
		if err != nil {
			retry.next = rt.Clock.Now().Add(AlarmRetryInitial).UnixMilli()
		}
		rt.sched.Done(k, at, retry.next)
		o.indexedAt.Store(0)
	}()
}

// alarmRun is one delivery of an object's alarm.
type alarmRun struct {
	firedAt int64
	read    bool        // orig was read
	orig    storedAlarm // the stored alarm that fired
	next    int64       // the alarm time after the run (0: none)
}

// runningAlarm is the alarm whose handler is running. The stored alarm
// stays in place until the handler succeeds, so a crash in the middle
// (even after the handler stepped outside the gate and its first turn
// committed) runs it again; meanwhile GetAlarm reads it as deleted.
type runningAlarm struct {
	at, gen int64
}

// storedAlarm is the alarm in the object's storage. gen changes with every
// SetAlarm, so a handler that set an alarm (even at the same time) is told
// apart from one that did not, and a SetAlarm rolled back with its
// transaction leaves gen as it was.
type storedAlarm struct {
	at, gen, retry int64
	ok             bool
}

func readAlarm(o *object) storedAlarm {
	st := o.store
	var a storedAlarm
	var err error
	if a.at, a.ok, err = st.MetaInt(metaAlarm); err != nil {
		panic(errAbort(err))
	}
	if a.gen, _, err = st.MetaInt(metaAlarmGen); err != nil {
		panic(errAbort(err))
	}
	if a.retry, _, err = st.MetaInt(metaAlarmRetry); err != nil {
		panic(errAbort(err))
	}
	return a
}

func deleteAlarm(o *object) {
	if err := o.store.DeleteMeta(metaAlarm, metaAlarmRetry, metaAlarmGen); err != nil {
		panic(errAbort(err))
	}
}

// run runs in the object's gate.
func (r *alarmRun) run(ctx context.Context, o *object) {
	a := readAlarm(o)
	now := o.rt.Clock.Now().UnixMilli()
	if !a.ok || a.at > now {
		if a.ok {
			r.next = a.at
		}
		return // nothing due: the index was early
	}
	r.read, r.orig = true, a
	h, ok := o.inst.(Alarmer)
	if !ok {
		o.state.Logger().Error("alarm dropped: object has no Alarm method")
		deleteAlarm(o)
		return
	}
	o.rt.stats.alarmRuns.Add(1)
	o.alarm = &runningAlarm{at: a.at, gen: a.gen}
	herr := h.Alarm(ctx, AlarmInfo{RetryCount: int(a.retry), IsRetry: a.retry > 0})
	o.alarm = nil
	if herr != nil {
		o.state.Logger().Warn("alarm handler failed", "retry", a.retry, "err", herr)
		r.recordFailure(ctx, o)
		return
	}
	after := readAlarm(o)
	switch {
	case after == a:
		deleteAlarm(o) // done, and the handler set no other
	case after.ok:
		r.next = after.at
	}
}

// recordFailure schedules the retry of a failed run, unless the handler set
// or deleted the alarm, or gives up after AlarmMaxRetries.
func (r *alarmRun) recordFailure(_ context.Context, o *object) {
	o.alarm = nil
	cur := readAlarm(o)
	if !r.read {
		// The run failed before it read anything: the alarm is as it was.
		if !cur.ok {
			return
		}
		r.read, r.orig = true, cur
	}
	if cur != r.orig {
		// The handler set a new alarm (or deleted it): that replaces the retry.
		if cur.ok {
			r.next = cur.at
		}
		return
	}
	if r.orig.retry >= AlarmMaxRetries {
		o.rt.stats.alarmFailures.Add(1)
		o.rt.Logger.Error("alarm abandoned", "class", o.ns.name, "id", o.id().String(), "retries", r.orig.retry)
		deleteAlarm(o)
		r.next = 0
		return
	}
	o.rt.stats.alarmRetries.Add(1)
	r.next = o.rt.Clock.Now().Add(alarmBackoff(r.orig.retry)).UnixMilli()
	if err := o.store.SetMetaInt(metaAlarm, r.next); err != nil {
		panic(errAbort(err))
	}
	if err := o.store.SetMetaInt(metaAlarmRetry, r.orig.retry+1); err != nil {
		panic(errAbort(err))
	}
}
