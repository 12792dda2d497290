package corebench

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	"github.com/durableobjects/durable"
)

// Class is the name the benchmark object is registered under.
const Class = "bench"

// Object is the benchmark's object class. Each RPC is one event.
type Object struct {
	st  *durable.State
	n   uint64
	buf [8]byte
}

// Put increments an in-memory counter and stores it under one key: one KV
// put per event, the unit every throughput figure counts.
func (o *Object) Put(ctx context.Context) error {
	o.n++
	binary.BigEndian.PutUint64(o.buf[:], o.n)
	return o.st.Storage().Put("n", o.buf[:])
}

// Read reads one key written by Fill and returns its length.
func (o *Object) Read(ctx context.Context) (int, error) {
	v, _, err := o.st.Storage().Get(fillKey(0))
	return len(v), err
}

// Fill writes keys keys of FillValueSize bytes each: a small database.
func (o *Object) Fill(ctx context.Context, keys int) error {
	v := make([]byte, FillValueSize)
	es := make(map[string][]byte, keys)
	for i := range keys {
		es[fillKey(i)] = v
	}
	return o.st.Storage().PutMany(es)
}

// FillValueSize is the size of each value Fill writes.
const FillValueSize = 100

func fillKey(i int) string { return "k" + strconv.Itoa(i) }

// Mode is a durability configuration of the runtime under test.
type Mode struct {
	Key        string // short name for flags, JSON and sub-benchmarks
	Label      string // what the table prints
	Durability durable.Durability
	Sync       durable.SyncMethod
	MaxBatch   int // 0: the runtime's default
}

// The modes the scenarios compare.
var (
	// Syncfs is the runtime's default: group commit, one syncfs per round.
	Syncfs = Mode{Key: "syncfs", Label: "group commit, barrier syncfs (default)", Sync: durable.SyncSyncfs}
	// Fdatasync is the barrier syncing each dirty file.
	Fdatasync = Mode{Key: "fdatasync", Label: "group commit, barrier fdatasync", Sync: durable.SyncFdatasync}
	// PerEvent commits and fsyncs every event alone.
	PerEvent = Mode{Key: "per-event", Label: "one fsync'd commit per event (MaxBatch=1)", Durability: durable.DurabilityPerCommit, MaxBatch: 1}
	// PerObject fsyncs every commit of every object on its own, with the
	// object's events still batched.
	PerObject = Mode{Key: "per-object", Label: "per-object fsync (DurabilityPerCommit)", Durability: durable.DurabilityPerCommit}
)

// Open opens a runtime in dir configured for m, with the benchmark class
// registered. Idle eviction is pushed out of the way (a minute) so that only
// the MaxActive cap evicts during a measurement.
func Open(dir string, m Mode) (*durable.Runtime, *durable.Namespace, error) {
	rt := durable.NewRuntime(dir)
	rt.Durability = m.Durability
	rt.SyncMethod = m.Sync
	rt.MaxBatch = m.MaxBatch
	rt.IdleTimeout = time.Minute
	ns, err := rt.Register(Class, func(st *durable.State) any { return &Object{st: st} })
	if err != nil {
		return nil, nil, err
	}
	if err := rt.Open(); err != nil {
		return nil, nil, err
	}
	return rt, ns, nil
}

// Close closes rt, waiting at most a minute.
func Close(rt *durable.Runtime) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return rt.Close(ctx)
}

// Put calls Object.Put through s.
func Put(ctx context.Context, s *durable.Stub) error {
	_, err := durable.Call[struct{}](ctx, s, "Put", nil)
	return err
}

// Read calls Object.Read through s and checks that it found the data.
func Read(ctx context.Context, s *durable.Stub) error {
	n, err := durable.Call[int](ctx, s, "Read", nil)
	if err == nil && n != FillValueSize {
		err = fmt.Errorf("read %d bytes, want %d", n, FillValueSize)
	}
	return err
}

// Fill calls Object.Fill through s.
func Fill(ctx context.Context, s *durable.Stub, keys int) error {
	_, err := durable.Call[struct{}](ctx, s, "Fill", keys)
	return err
}

// Name returns the name of the i-th object of a scenario.
func Name(i int) string { return "obj-" + strconv.Itoa(i) }
