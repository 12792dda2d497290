package durable_test

import (
	"testing"
	"time"
)

// An alarm set by the event right after an alarm run, before the runtime
// has finished its bookkeeping of that run, must still fire. (It once
// vanished from the index: the object kept it, the timer loop did not.)
func TestAlarmSetRightAfterAnAlarmRunFires(t *testing.T) {
	h := newHarness(t, "", nil)
	stub := h.ns.GetByName("again")
	for i := range 50 {
		call[struct{}](t, stub, "SetAlarmIn", time.Second)
		h.clock.Advance(time.Second)
		h.expectAlarm(t)
		// Race the delivery's bookkeeping: set the next alarm at once.
		call[struct{}](t, stub, "SetAlarmIn", 10*time.Second)
		at := h.clock.Now().Add(10 * time.Second)
		waitFor(t, "alarm timer armed", func() bool { return h.clock.HasTimer(at) })
		h.clock.Set(at)
		select {
		case <-h.alarms:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the alarm set after the previous run never fired", i)
		}
	}
}
