package durable

import (
	"sync/atomic"
	"time"

	"github.com/durableobjects/durable/internal/actor"
)

// Stats are counters of a runtime's work since Open.
type Stats struct {
	ActiveObjects int64  // objects in memory now
	Activations   uint64 // constructor runs
	Evictions     uint64 // objects removed from memory
	Events        uint64 // events queued
	EventsRun     uint64 // events run and committed (their replies may wait for a sync)
	Overloaded    uint64 // calls refused with ErrOverloaded
	Commits       uint64 // batch commits that wrote
	CommitErrors  uint64 // batch commits that failed
	SyncRounds    uint64 // durability barrier rounds
	SyncErrors    uint64 // barrier rounds that failed
	AlarmRuns     uint64 // alarm handler runs
	AlarmRetries  uint64 // failed runs scheduled again
	AlarmFailures uint64 // alarms abandoned after AlarmMaxRetries
	// SyncLatency counts barrier rounds by duration: SyncLatency[i] rounds
	// took at most SyncLatencyBuckets[i]; the last counts the rest.
	SyncLatency    [len(SyncLatencyBuckets) + 1]uint64
	SyncLatencySum time.Duration
}

// SyncLatencyBuckets are the upper bounds of Stats.SyncLatency.
var SyncLatencyBuckets = [...]time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, time.Second,
}

type stats struct {
	activeObjects atomic.Int64
	activations   atomic.Uint64
	evictions     atomic.Uint64
	events        atomic.Uint64
	eventsRun     atomic.Uint64
	overloaded    atomic.Uint64
	commits       atomic.Uint64
	commitErrors  atomic.Uint64
	syncRounds    atomic.Uint64
	syncErrors    atomic.Uint64
	alarmRuns     atomic.Uint64
	alarmRetries  atomic.Uint64
	alarmFailures atomic.Uint64
	syncLatency   [len(SyncLatencyBuckets) + 1]atomic.Uint64
	syncSum       atomic.Int64
}

func (s *stats) commit(events int, wrote bool, err error) {
	s.eventsRun.Add(uint64(events))
	switch {
	case err != nil:
		s.commitErrors.Add(1)
	case wrote:
		s.commits.Add(1)
	}
}

func (s *stats) syncRound(d time.Duration, _ int, err error) {
	s.syncRounds.Add(1)
	if err != nil {
		s.syncErrors.Add(1)
	}
	i := 0
	for i < len(SyncLatencyBuckets) && d > SyncLatencyBuckets[i] {
		i++
	}
	s.syncLatency[i].Add(1)
	s.syncSum.Add(int64(d))
}

// Stats returns a snapshot of the runtime's counters.
func (rt *Runtime) Stats() Stats {
	s := &rt.stats
	out := Stats{
		ActiveObjects:  s.activeObjects.Load(),
		Activations:    s.activations.Load(),
		Evictions:      s.evictions.Load(),
		Events:         s.events.Load(),
		EventsRun:      s.eventsRun.Load(),
		Overloaded:     s.overloaded.Load(),
		Commits:        s.commits.Load(),
		CommitErrors:   s.commitErrors.Load(),
		SyncRounds:     s.syncRounds.Load(),
		SyncErrors:     s.syncErrors.Load(),
		AlarmRuns:      s.alarmRuns.Load(),
		AlarmRetries:   s.alarmRetries.Load(),
		AlarmFailures:  s.alarmFailures.Load(),
		SyncLatencySum: time.Duration(s.syncSum.Load()),
	}
	for i := range s.syncLatency {
		out.SyncLatency[i] = s.syncLatency[i].Load()
	}
	return out
}

// errAbort fails the running event with err, discarding its turn.
func errAbort(err error) actor.Abort { return actor.Abort{Err: err} }
