package durable_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/durableobjects/durable"
	"github.com/durableobjects/durable/durabletest"
)

// testObject is a general-purpose object for the runtime's tests.
type testObject struct {
	st  *durable.State
	mem int // in-memory state, lost on eviction or reset
	log []int
	h   *harness
}

func (o *testObject) Incr(ctx context.Context) (int, error) {
	s := o.st.Storage()
	n, _, err := durable.Get[int](s, "n")
	if err != nil {
		return 0, err
	}
	n++
	o.mem++
	return n, durable.Put(s, "n", n)
}

func (o *testObject) Get(ctx context.Context, key string) (string, error) {
	v, _, err := o.st.Storage().Get(key)
	return string(v), err
}

type kv struct{ Key, Value string }

func (o *testObject) Set(ctx context.Context, p kv) error {
	return o.st.Storage().Put(p.Key, []byte(p.Value))
}

// SetThenPanic writes, then panics: the write must not survive.
func (o *testObject) SetThenPanic(ctx context.Context, p kv) error {
	if err := o.st.Storage().Put(p.Key, []byte(p.Value)); err != nil {
		return err
	}
	o.mem = 1000
	panic("boom")
}

func (o *testObject) Mem(ctx context.Context) (int, error) { return o.mem, nil }

func (o *testObject) Append(ctx context.Context, i int) error {
	o.log = append(o.log, i)
	return nil
}

func (o *testObject) Log(ctx context.Context) ([]int, error) { return o.log, nil }

// Block holds the object's gate until the harness's unblock channel closes.
func (o *testObject) Block(ctx context.Context) error {
	o.h.blocked <- struct{}{}
	<-o.h.unblock
	return nil
}

type harness struct {
	t       *testing.T
	rt      *durable.Runtime
	ns      *durable.Namespace
	created atomic.Int64
	clock   *durabletest.Clock
	alarms  chan alarmRun
	blocked chan struct{} // Block started
	unblock chan struct{} // closed to end Block
}

// newHarness opens a runtime in a temp dir with one class, "obj".
func newHarness(t *testing.T, dir string, configure func(rt *durable.Runtime)) *harness {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	h := &harness{t: t, clock: durabletest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)), alarms: make(chan alarmRun, 100),
		blocked: make(chan struct{}, 1), unblock: make(chan struct{})}
	h.rt = durable.NewRuntime(dir)
	h.rt.Clock = h.clock
	if configure != nil {
		configure(h.rt)
	}
	var err error
	h.ns, err = h.rt.Register("obj", func(st *durable.State) any {
		h.created.Add(1)
		return &testObject{st: st, h: h}
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.rt.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.close() })
	return h
}

func (h *harness) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.rt.Close(ctx); err != nil {
		h.t.Errorf("Close: %v", err)
	}
}

func call[R any](t *testing.T, s *durable.Stub, method string, arg any) R {
	t.Helper()
	r, err := durable.Call[R](context.Background(), s, method, arg)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return r
}

func TestConcurrentIncrementsAreExact(t *testing.T) {
	h := newHarness(t, "", nil)
	const callers, each = 50, 20
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stub := h.ns.GetByName("counter") // a stub per caller
			for range each {
				if _, err := durable.Call[int](context.Background(), stub, "Incr", nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if got := call[int](t, h.ns.GetByName("counter"), "Incr", nil); got != callers*each+1 {
		t.Fatalf("after %d increments the next one returned %d, want %d", callers*each, got, callers*each+1)
	}
}

func TestCallsThroughOneStubArriveInOrder(t *testing.T) {
	h := newHarness(t, "", nil)
	stub := h.ns.GetByName("ordered")
	ctx := context.Background()
	const n = 1000
	pending := make([]*durable.Pending[struct{}], n)
	for i := range n {
		pending[i] = durable.Go[struct{}](ctx, stub, "Append", i)
	}
	for i, p := range pending {
		if _, err := p.Wait(ctx); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	log := call[[]int](t, stub, "Log", nil)
	if len(log) != n {
		t.Fatalf("object saw %d calls, want %d", len(log), n)
	}
	for i, v := range log {
		if v != i {
			t.Fatalf("call %d arrived at position %d", v, i)
		}
	}
}

func TestPanicDiscardsWritesAndResetsObject(t *testing.T) {
	h := newHarness(t, "", nil)
	stub := h.ns.GetByName("p")
	call[struct{}](t, stub, "Set", kv{"a", "1"})
	if got := call[int](t, stub, "Incr", nil); got != 1 {
		t.Fatalf("Incr = %d", got)
	}
	before := h.created.Load()
	_, err := durable.Call[struct{}](context.Background(), stub, "SetThenPanic", kv{"a", "2"})
	var pe *durable.PanicError
	if !errors.As(err, &pe) {
		t.Fatalf("panicking call returned %v, want a PanicError", err)
	}
	if got := call[string](t, stub, "Get", "a"); got != "1" {
		t.Fatalf("after the panic a = %q, want the value before it, \"1\"", got)
	}
	if got := h.created.Load(); got != before+1 {
		t.Fatalf("constructor ran %d times after the panic, want once", got-before)
	}
	if got := call[int](t, stub, "Mem", nil); got != 0 {
		t.Fatalf("in-memory state after reset = %d, want 0 (fresh instance)", got)
	}
}

func TestPanicUndoesOnlyItsOwnEventInABatch(t *testing.T) {
	h := newHarness(t, "", nil)
	stub := h.ns.GetByName("batch")
	ctx := context.Background()
	// Queue many events at once so they run in one batch, one of them panicking.
	var ps []*durable.Pending[struct{}]
	for i := range 20 {
		m := "Set"
		if i == 10 {
			m = "SetThenPanic"
		}
		ps = append(ps, durable.Go[struct{}](ctx, stub, m, kv{fmt.Sprint("k", i), "v"}))
	}
	for i, p := range ps {
		_, err := p.Wait(ctx)
		if (i == 10) != (err != nil) {
			t.Fatalf("event %d: err = %v", i, err)
		}
	}
	for i := range 20 {
		got := call[string](t, stub, "Get", fmt.Sprint("k", i))
		if want := map[bool]string{true: "", false: "v"}[i == 10]; got != want {
			t.Fatalf("k%d = %q, want %q", i, got, want)
		}
	}
}

func TestEvictionRebuildsInstanceAndKeepsStorage(t *testing.T) {
	h := newHarness(t, "", func(rt *durable.Runtime) { rt.IdleTimeout = time.Minute })
	stub := h.ns.GetByName("ev")
	call[int](t, stub, "Incr", nil)
	call[int](t, stub, "Incr", nil)
	if got := call[int](t, stub, "Mem", nil); got != 2 {
		t.Fatalf("mem = %d", got)
	}
	created := h.created.Load()
	h.clock.Advance(30 * time.Second)
	durable.EvictIdle(h.rt)
	if n := durable.ActiveObjects(h.rt); n != 1 {
		t.Fatalf("object evicted before its idle timeout: %d active", n)
	}
	h.clock.Advance(31 * time.Second)
	// A reply can arrive a moment before its object's loop goes idle: look
	// again until it is.
	waitFor(t, "object evicted after its idle timeout", func() bool {
		durable.EvictIdle(h.rt)
		return durable.ActiveObjects(h.rt) == 0
	})
	if got := call[int](t, stub, "Mem", nil); got != 0 {
		t.Fatalf("in-memory state survived eviction: %d", got)
	}
	if got := h.created.Load(); got != created+1 {
		t.Fatalf("constructor ran %d more times, want 1", got-created)
	}
	if got := call[int](t, stub, "Incr", nil); got != 3 {
		t.Fatalf("stored count after eviction = %d, want 3", got)
	}
}

func TestEvictionByClockWithoutCallingEvict(t *testing.T) {
	h := newHarness(t, "", func(rt *durable.Runtime) { rt.IdleTimeout = 10 * time.Second })
	call[int](t, h.ns.GetByName("x"), "Incr", nil)
	h.clock.Advance(12 * time.Second) // the janitor's timers fire on the clock
	deadline := time.Now().Add(10 * time.Second)
	for durable.ActiveObjects(h.rt) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle object not evicted after its idle timeout")
		}
		h.clock.Advance(time.Second)
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMaxActiveEvictsLeastRecentlyUsed(t *testing.T) {
	h := newHarness(t, "", func(rt *durable.Runtime) { rt.MaxActive = 5 })
	for i := range 10 {
		h.clock.Advance(time.Millisecond)
		call[int](t, h.ns.GetByName(fmt.Sprint("o", i)), "Incr", nil)
	}
	waitFor(t, "at most 5 objects active", func() bool {
		durable.EvictIdle(h.rt)
		return durable.ActiveObjects(h.rt) <= 5
	})
	// The five most recently used survive, with their in-memory state.
	for i := 5; i < 10; i++ {
		if got := call[int](t, h.ns.GetByName(fmt.Sprint("o", i)), "Mem", nil); got != 1 {
			t.Fatalf("o%d, among the 5 most recently used, was evicted (mem=%d)", i, got)
		}
	}
}

// An object that is busy cannot be evicted; over MaxActive the next least
// recently used goes in its place, so MaxActive still holds.
func TestMaxActiveSkipsBusyObjects(t *testing.T) {
	h := newHarness(t, "", func(rt *durable.Runtime) { rt.MaxActive = 5 })
	blockDone := make(chan error, 1)
	go func() {
		_, err := durable.Call[struct{}](context.Background(), h.ns.GetByName("o0"), "Block", nil)
		blockDone <- err
	}()
	<-h.blocked // o0, the least recently used from now on, is busy
	for i := 1; i < 10; i++ {
		h.clock.Advance(time.Millisecond)
		call[int](t, h.ns.GetByName(fmt.Sprint("o", i)), "Incr", nil)
	}
	waitFor(t, "at most 5 objects active", func() bool {
		durable.EvictIdle(h.rt)
		return durable.ActiveObjects(h.rt) <= 5
	})
	close(h.unblock)
	if err := <-blockDone; err != nil {
		t.Fatal(err)
	}
	// The busy one stayed; the four most recently used besides it too.
	for i := 6; i < 10; i++ {
		if got := call[int](t, h.ns.GetByName(fmt.Sprint("o", i)), "Mem", nil); got != 1 {
			t.Fatalf("o%d, among the most recently used, was evicted (mem=%d)", i, got)
		}
	}
}

func TestNoFileUntilFirstWrite(t *testing.T) {
	h := newHarness(t, "", nil)
	id := h.ns.IDFromName("reader")
	stub := h.ns.Get(id)
	if got := call[string](t, stub, "Get", "missing"); got != "" {
		t.Fatalf("Get = %q", got)
	}
	path := durable.ObjectFile(h.rt, id)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an object that only read has a file: %v", err)
	}
	call[struct{}](t, stub, "Set", kv{"k", "v"})
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("after a write: %v", err)
	}
	// Layout: <data>/<class>/<first 2 hex>/<id>.sqlite
	want := filepath.Join(h.rt.Dir, "obj", id.String()[:2], id.String()+".sqlite")
	if path != want {
		t.Fatalf("object file %s, want %s", path, want)
	}
}

func TestIDs(t *testing.T) {
	h := newHarness(t, "", nil)
	other, err := durable.NewRuntime(t.TempDir()).Register("obj", func(*durable.State) any { return nil })
	if err != nil {
		t.Fatal(err)
	}
	_ = other
	a, b := h.ns.IDFromName("a"), h.ns.IDFromName("a")
	if !a.Equal(b) || a.String() != b.String() {
		t.Fatal("IDFromName is not deterministic")
	}
	if a.Name() != "a" {
		t.Fatalf("Name = %q", a.Name())
	}
	if h.ns.IDFromName("b").Equal(a) {
		t.Fatal("different names gave one ID")
	}
	u1, u2 := h.ns.NewUniqueID(), h.ns.NewUniqueID()
	if u1.Equal(u2) || u1.Name() != "" {
		t.Fatal("unique IDs repeat or carry a name")
	}
	parsed, err := h.ns.IDFromString(u1.String())
	if err != nil || !parsed.Equal(u1) {
		t.Fatalf("round trip: %v", err)
	}
	s := a.String()
	flip := []byte(s)
	flip[40] = map[bool]byte{true: '1', false: '0'}[flip[40] == '0']
	bad := map[string]string{
		"short":      s[:63],
		"long":       s + "0",
		"uppercase":  "A" + s[1:],
		"not hex":    "g" + s[1:],
		"forged MAC": string(flip),
		"empty":      "",
	}
	for name, in := range bad {
		if _, err := h.ns.IDFromString(in); !errors.Is(err, durable.ErrInvalidID) {
			t.Errorf("%s: IDFromString(%q) = %v, want ErrInvalidID", name, in, err)
		}
	}
	// An ID made by another data directory's namespace of the same name.
	h2 := newHarness(t, "", nil)
	foreign := h2.ns.IDFromName("a").String()
	if _, err := h.ns.IDFromString(foreign); !errors.Is(err, durable.ErrInvalidID) {
		t.Errorf("foreign ID accepted: %v", err)
	}
	// An ID of another namespace of the same runtime.
}

func TestOverloadedFailsFast(t *testing.T) {
	h := newHarness(t, "", func(rt *durable.Runtime) { rt.MaxQueue = 10; rt.StubRetry = durable.Retry{Attempts: 1} })
	stub := h.ns.GetByName("slow")
	release := make(chan struct{})
	block := make(chan struct{})
	// Hold the object's gate with an event that waits.
	gate := durable.Go[struct{}](context.Background(), stub, "Append", 0)
	_ = gate
	_ = release
	_ = block
	ctx := context.Background()
	var overloaded, ok int
	var ps []*durable.Pending[struct{}]
	for range 500 {
		ps = append(ps, durable.Go[struct{}](ctx, stub, "Append", 1))
	}
	for _, p := range ps {
		if _, err := p.Wait(ctx); errors.Is(err, durable.ErrOverloaded) {
			overloaded++
		} else if err == nil {
			ok++
		} else {
			t.Fatal(err)
		}
	}
	if overloaded == 0 {
		t.Fatal("500 calls queued at once on a queue of 10: none was refused")
	}
	log := call[[]int](t, stub, "Log", nil)
	if len(log) != ok+1 {
		t.Fatalf("object ran %d events, %d were accepted", len(log), ok+1)
	}
}

// Once Close began, a stub that still holds its live object is refused too:
// it cannot keep an object busy and hold Close up. A closed runtime does not
// open again.
func TestCallsRefusedOnceCloseBegins(t *testing.T) {
	h := newHarness(t, "", nil)
	stub := h.ns.Get(h.ns.IDFromName("a"))
	call[int](t, stub, "Incr", nil) // the stub now holds the live object
	blockDone := make(chan error, 1)
	go func() { _, err := durable.Call[struct{}](context.Background(), stub, "Block", nil); blockDone <- err }()
	<-h.blocked

	expired, cancel := context.WithCancel(context.Background())
	cancel()
	if err := h.rt.Close(expired); !errors.Is(err, context.Canceled) {
		t.Fatalf("Close with a busy object and a canceled context: %v, want context.Canceled", err)
	}
	callCtx, cancelCall := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelCall()
	if _, err := durable.Call[int](callCtx, stub, "Incr", nil); !errors.Is(err, durable.ErrClosed) {
		t.Fatalf("call during Close: %v, want ErrClosed", err)
	}
	close(h.unblock)
	if err := <-blockDone; err != nil {
		t.Fatalf("the event in flight when Close began: %v", err)
	}
	if err := h.rt.Close(context.Background()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := h.rt.Open(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Open after Close: %v, want an error saying the runtime was closed", err)
	}
	// Only the first Incr committed.
	h2 := newHarness(t, h.rt.Dir, nil)
	if n := call[int](t, h2.ns.Get(h2.ns.IDFromName("a")), "Incr", nil); n != 2 {
		t.Fatalf("after reopening, Incr = %d, want 2", n)
	}
}

// openRuntime opens rt and closes it when the test ends.
func openRuntime(t *testing.T, rt *durable.Runtime) {
	t.Helper()
	if err := rt.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close(context.Background()) })
}

// failingSyncRuntime opens a runtime of testObjects whose sync rounds fail
// with EIO once the returned flag is set, each after calling beforeFail
// (if not nil).
func failingSyncRuntime(t *testing.T, beforeFail func()) (*durable.Runtime, *durable.Namespace, *atomic.Bool) {
	t.Helper()
	rt := durable.NewRuntime(t.TempDir())
	ns, err := rt.Register("obj", func(st *durable.State) any { return &testObject{st: st} })
	if err != nil {
		t.Fatal(err)
	}
	openRuntime(t, rt)
	fail := new(atomic.Bool)
	durable.SetSyncFunc(rt, func() error {
		if !fail.Load() {
			return nil
		}
		if beforeFail != nil {
			beforeFail()
		}
		return errors.New("EIO (injected)")
	})
	return rt, ns, fail
}

// After a sync round fails, nothing the node wrote since the last good
// round can be trusted to be on disk: the event whose commit it was gets an
// error, and so does every later one, reads included, since what they read
// may be that lost write.
func TestEveryResultFailsAfterAFailedSync(t *testing.T) {
	_, ns, fail := failingSyncRuntime(t, nil)
	ctx := context.Background()
	s := ns.GetByName("x")
	if n, err := durable.Call[int](ctx, s, "Incr", nil); err != nil || n != 1 {
		t.Fatalf("Incr: %d, %v", n, err)
	}
	fail.Store(true)
	if n, err := durable.Call[int](ctx, s, "Incr", nil); err == nil {
		t.Fatalf("Incr whose sync failed: %d, no error", n)
	}
	// A read of the same object, and of one that never saw the failure.
	for _, name := range []string{"x", "y"} {
		if v, err := durable.Call[string](ctx, ns.GetByName(name), "Get", "n"); err == nil {
			t.Fatalf("read of %s after the failed sync: %q, no error", name, v)
		}
	}
}

// A read that waits behind a write whose sync is in flight fails if that
// sync fails: it may have read the write the sync lost.
func TestReadBehindAFailingSyncFails(t *testing.T) {
	syncing, release := make(chan struct{}, 10), make(chan struct{})
	rt, ns, fail := failingSyncRuntime(t, func() {
		syncing <- struct{}{}
		<-release
	})
	ctx := context.Background()
	s := ns.GetByName("x")
	if _, err := durable.Call[int](ctx, s, "Incr", nil); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	incr := durable.Go[int](ctx, s, "Incr", nil)
	<-syncing // the write's sync is in flight
	get := durable.Go[string](ctx, s, "Get", "n")
	waitFor(t, "the read to run", func() bool { return rt.Stats().Events >= 3 })
	time.Sleep(50 * time.Millisecond) // and to wait behind the write's sync
	close(release)
	if _, err := incr.Wait(ctx); err == nil {
		t.Fatal("the write whose sync failed succeeded")
	}
	if v, err := get.Wait(ctx); err == nil {
		t.Fatalf("the read behind it returned %q, no error", v)
	}
}
