package durable_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
)

type alarmRun struct {
	object string
	at     time.Time // clock time of the run
	info   durable.AlarmInfo
}

// Alarm records the run; it fails while the key "fail" is set, and sets a
// new alarm when "rearm" holds a delay.
func (o *testObject) Alarm(ctx context.Context, info durable.AlarmInfo) error {
	s := o.st.Storage()
	select { // never block the object: a test flooded with runs fails, not hangs
	case o.h.alarms <- alarmRun{object: o.st.ID().String(), at: o.st.Now(), info: info}:
	default:
	}
	if d, ok, _ := durable.Get[time.Duration](s, "rearm"); ok {
		if err := s.SetAlarm(o.st.Now().Add(d)); err != nil {
			return err
		}
	}
	if _, ok, _ := s.Get("undone-delete"); ok {
		// A DeleteAlarm rolled back with its transaction changes nothing.
		s.Transaction(func() error {
			s.DeleteAlarm()
			return errors.New("undo")
		})
	}
	if _, fail, _ := s.Get("fail"); fail {
		return errors.New("alarm handler failing on purpose")
	}
	return nil
}

func (o *testObject) SetAlarmIn(ctx context.Context, d time.Duration) error {
	return o.st.Storage().SetAlarm(o.st.Now().Add(d))
}

func (o *testObject) AlarmAt(ctx context.Context) (int64, error) {
	t, ok, err := o.st.Storage().GetAlarm()
	if !ok {
		return 0, err
	}
	return t.UnixMilli(), err
}

func (o *testObject) DeleteAlarm(ctx context.Context) error { return o.st.Storage().DeleteAlarm() }

func (h *harness) expectAlarm(t *testing.T) alarmRun {
	t.Helper()
	select {
	case r := <-h.alarms:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("alarm did not run")
		return alarmRun{}
	}
}

// advanceToAlarm waits until the alarm loop has armed its timer for at,
// checks that nothing fires a millisecond before, then moves the clock to at.
func (h *harness) advanceToAlarm(t *testing.T, at time.Time) {
	t.Helper()
	waitFor(t, "alarm timer armed", func() bool { return h.clock.HasTimer(at) })
	h.clock.Set(at.Add(-time.Millisecond))
	h.expectNoAlarm(t)
	h.clock.Set(at)
}

func (h *harness) expectNoAlarm(t *testing.T) {
	t.Helper()
	select {
	case r := <-h.alarms:
		t.Fatalf("unexpected alarm run: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestAlarmFiresAtItsTime(t *testing.T) {
	h := newHarness(t, "", nil)
	stub := h.ns.GetByName("a")
	start := h.clock.Now()
	call[struct{}](t, stub, "SetAlarmIn", 10*time.Second)
	h.clock.Advance(9 * time.Second)
	h.expectNoAlarm(t)
	h.advanceToAlarm(t, start.Add(10*time.Second))
	r := h.expectAlarm(t)
	if r.at.Before(start.Add(10*time.Second)) || r.info.RetryCount != 0 || r.info.IsRetry {
		t.Fatalf("run %+v", r)
	}
	// A successful run clears the alarm, and it does not fire again.
	waitFor(t, "alarm cleared", func() bool { return call[int64](t, stub, "AlarmAt", nil) == 0 })
	h.clock.Advance(time.Hour)
	h.expectNoAlarm(t)
}

func TestAlarmInThePastFiresAtOnce(t *testing.T) {
	h := newHarness(t, "", nil)
	call[struct{}](t, h.ns.GetByName("p"), "SetAlarmIn", -time.Hour)
	h.expectAlarm(t) // no clock movement needed
}

func TestSetAlarmReplacesTheOldOne(t *testing.T) {
	h := newHarness(t, "", nil)
	stub := h.ns.GetByName("r")
	start := h.clock.Now()
	call[struct{}](t, stub, "SetAlarmIn", 5*time.Second)
	call[struct{}](t, stub, "SetAlarmIn", 20*time.Second) // later: replaces
	h.clock.Advance(6 * time.Second)
	h.expectNoAlarm(t)
	h.advanceToAlarm(t, start.Add(20*time.Second))
	h.expectAlarm(t)
	call[struct{}](t, stub, "SetAlarmIn", 5*time.Second)
	call[struct{}](t, stub, "DeleteAlarm", nil)
	h.clock.Advance(time.Minute)
	h.expectNoAlarm(t)
}

func TestAlarmWakesAnEvictedObject(t *testing.T) {
	h := newHarness(t, "", nil)
	start := h.clock.Now()
	call[struct{}](t, h.ns.GetByName("e"), "SetAlarmIn", time.Minute)
	waitFor(t, "alarm timer armed", func() bool { return h.clock.HasTimer(start.Add(time.Minute)) })
	durable.EvictIdle(h.rt) // not idle yet
	h.clock.Advance(30 * time.Second)
	waitFor(t, "object evicted", func() bool {
		durable.EvictIdle(h.rt)
		return durable.ActiveObjects(h.rt) == 0
	})
	created := h.created.Load()
	h.clock.Advance(31 * time.Second)
	h.expectAlarm(t)
	if h.created.Load() != created+1 {
		t.Fatal("alarm ran without re-creating the evicted object")
	}
}

func TestFailingAlarmRetriesWithBackoffThenStops(t *testing.T) {
	h := newHarness(t, "", nil)
	stub := h.ns.GetByName("f")
	call[struct{}](t, stub, "Set", kv{"fail", "1"})
	call[struct{}](t, stub, "SetAlarmIn", time.Second)
	h.advanceToAlarm(t, h.clock.Now().Add(time.Second))
	r := h.expectAlarm(t)
	for retry := 1; retry <= durable.AlarmMaxRetries; retry++ {
		// The failure schedules the retry at 2s·2^(n-1) plus up to 25 %.
		var next int64
		waitFor(t, "retry scheduled", func() bool {
			next = call[int64](t, stub, "AlarmAt", nil)
			return next > r.at.UnixMilli()
		})
		delay := time.Duration(next-r.at.UnixMilli()) * time.Millisecond
		base := durable.AlarmRetryInitial << (retry - 1)
		if delay < base || delay > base+base/4 {
			t.Fatalf("retry %d scheduled %v after the failure, want %v..%v", retry, delay, base, base+base/4)
		}
		h.advanceToAlarm(t, time.UnixMilli(next))
		r = h.expectAlarm(t)
		if r.info.RetryCount != retry || !r.info.IsRetry {
			t.Fatalf("run %d has RetryCount %d IsRetry %v", retry, r.info.RetryCount, r.info.IsRetry)
		}
	}
	// After 6 retries the alarm is abandoned.
	waitFor(t, "alarm abandoned", func() bool { return call[int64](t, stub, "AlarmAt", nil) == 0 })
	h.clock.Advance(24 * time.Hour)
	h.expectNoAlarm(t)
	if s := h.rt.Stats(); s.AlarmRetries != durable.AlarmMaxRetries || s.AlarmFailures != 1 {
		t.Fatalf("stats: %d retries, %d failures", s.AlarmRetries, s.AlarmFailures)
	}
}

func TestAlarmSetInAFailingHandlerReplacesTheRetry(t *testing.T) {
	h := newHarness(t, "", nil)
	stub := h.ns.GetByName("rearm")
	call[struct{}](t, stub, "Set", kv{"fail", "1"})
	call[struct{}](t, stub, "Set", kv{"rearm", "60000000000"}) // 1 minute, JSON time.Duration
	call[struct{}](t, stub, "SetAlarmIn", time.Second)
	h.clock.Advance(time.Second)
	h.expectAlarm(t)
	var at int64
	waitFor(t, "new alarm", func() bool { at = call[int64](t, stub, "AlarmAt", nil); return at != 0 })
	if want := h.clock.Now().Add(time.Minute).UnixMilli(); at != want {
		t.Fatalf("alarm at %d, want the handler's new alarm %d (not a retry)", at, want)
	}
	h.clock.Advance(time.Minute)
	r := h.expectAlarm(t)
	if r.info.IsRetry {
		t.Fatal("the new alarm ran as a retry")
	}
}

func TestAlarmsDueDuringDowntimeFireAtStart(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, nil)
	call[struct{}](t, h.ns.GetByName("d"), "SetAlarmIn", time.Hour)
	h.close()
	h2 := newHarness(t, dir, nil)
	h2.clock.Advance(2 * time.Hour) // the second runtime starts late
	h2.expectAlarm(t)
}

func TestRolledBackAlarmChangeDoesNotCount(t *testing.T) {
	h := newHarness(t, "", nil)
	stub := h.ns.GetByName("undo")
	call[struct{}](t, stub, "Set", kv{"undone-delete", "1"})
	call[struct{}](t, stub, "SetAlarmIn", time.Second)
	h.advanceToAlarm(t, h.clock.Now().Add(time.Second))
	h.expectAlarm(t)
	// The run succeeded and set no alarm: it is done, once.
	waitFor(t, "alarm cleared", func() bool { return call[int64](t, stub, "AlarmAt", nil) == 0 })
	h.expectNoAlarm(t)
}

// brittle's constructor fails while its runtime's broken flag is set.
type brittle struct{ st *durable.State }

func (b *brittle) Alarm(ctx context.Context, _ durable.AlarmInfo) error { return nil }

func (b *brittle) SetAlarmIn(ctx context.Context, d time.Duration) error {
	return b.st.Storage().SetAlarm(b.st.Now().Add(d))
}

func (b *brittle) Panic(ctx context.Context) error { panic("reset") }

// An alarm whose object cannot be built (its constructor fails) counts as
// a failed run: retried with backoff, then abandoned, like a failing
// handler, rather than retried every 2 s for ever.
func TestAlarmOfAnObjectThatCannotBeBuiltBacksOffThenStops(t *testing.T) {
	clock := durabletest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	rt := durable.NewRuntime(t.TempDir())
	rt.Clock = clock
	rt.IdleTimeout = time.Hour
	var broken atomic.Bool
	var builds atomic.Int64
	ns, err := rt.Register("brittle", func(st *durable.State) any {
		if broken.Load() {
			builds.Add(1)
			st.BlockConcurrencyWhile(func() error { return errors.New("migration failed") })
		}
		return &brittle{st: st}
	})
	if err != nil {
		t.Fatal(err)
	}
	openRuntime(t, rt)
	ctx := context.Background()
	s := ns.GetByName("b")
	if _, err := durable.Call[struct{}](ctx, s, "SetAlarmIn", time.Second); err != nil {
		t.Fatal(err)
	}
	durable.Call[struct{}](ctx, s, "Panic", nil) // the next event builds the object again
	broken.Store(true)
	// Ten minutes, a second at a time: the retries (2 s doubling, six of
	// them, ~2 min in all) and then nothing.
	for range 600 {
		clock.Advance(time.Second)
		time.Sleep(2 * time.Millisecond)
	}
	waitFor(t, "the alarm to be abandoned", func() bool { return rt.Stats().AlarmFailures == 1 })
	st := rt.Stats()
	if n := builds.Load(); n != 1+durable.AlarmMaxRetries || st.AlarmRetries != durable.AlarmMaxRetries {
		t.Fatalf("%d builds and %d retries, want %d and %d", n, st.AlarmRetries, 1+durable.AlarmMaxRetries, durable.AlarmMaxRetries)
	}
}

// An alarm set a fraction of a millisecond past a whole one is stored
// rounded up, so it does not run before its time.
func TestAlarmNeverRunsEarly(t *testing.T) {
	h := newHarness(t, "", nil)
	stub := h.ns.GetByName("sub-ms")
	start := h.clock.Now()
	call[struct{}](t, stub, "SetAlarmIn", 10*time.Second+700*time.Microsecond)
	if at := call[int64](t, stub, "AlarmAt", nil); at != start.Add(10*time.Second+time.Millisecond).UnixMilli() {
		t.Fatalf("alarm stored at %v after start, want 10.001 s", time.UnixMilli(at).Sub(start))
	}
	// Nothing at 10.000 s (advanceToAlarm checks a millisecond before), then it runs.
	h.advanceToAlarm(t, start.Add(10*time.Second+time.Millisecond))
	if r := h.expectAlarm(t); r.at.Before(start.Add(10*time.Second + 700*time.Microsecond)) {
		t.Fatalf("alarm ran at %v after start", r.at.Sub(start))
	}
}
