package alarm

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/durableobjects/durable/internal/node"
)

// An alarm the object sets while its previous alarm is being delivered
// (after the handler ran, before Done corrects the index) stays in the
// index: Done must not delete or move it.
func TestSetDuringDeliverySurvivesDone(t *testing.T) {
	db, err := node.Open(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mu sync.Mutex
	now := int64(1_000)
	type firing struct {
		k  Key
		at int64
	}
	fired := make(chan firing, 100)
	s := Start(Config{
		DB:        db,
		Now:       func() time.Time { mu.Lock(); defer mu.Unlock(); return time.UnixMilli(now) },
		AfterFunc: func(d time.Duration, f func()) func() bool { return func() bool { return true } },
		Fire:      func(k Key, at int64) { fired <- firing{k, at} },
		Logger:    slog.New(slog.DiscardHandler),
	})
	defer s.Close()

	for i, tc := range []struct {
		name      string
		later     int64 // set during the delivery
		next      int64 // what the delivered run reported
		wantEntry int64
	}{
		{"handler set none", 9_000, 0, 9_000},
		{"handler set a later one", 9_000, 20_000, 9_000},
		{"handler set an earlier one", 9_000, 5_000, 5_000},
		{"same time as the fired one", 1_000, 0, 1_000},
	} {
		// A key per case: a scan may fire a case's entry again before its
		// cleanup, and that delivery must not be taken for the next case's.
		k := Key{NS: "ns", ID: [32]byte{byte(i + 1)}}
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Set(k, 1_000); err != nil {
				t.Fatal(err)
			}
			s.Kick()
			var at int64
			for f := range fired {
				if f.k == k {
					at = f.at
					break
				}
			}
			if err := s.Set(k, tc.later); err != nil { // an event after the alarm's
				t.Fatal(err)
			}
			s.Done(k, at, tc.next)
			got, err := s.Lookup(k)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.wantEntry {
				t.Fatalf("index entry %d, want %d", got, tc.wantEntry)
			}
			if err := s.Correct(k, got, 0); err != nil { // clean up for the next case
				t.Fatal(err)
			}
		})
	}
}

// Entries of classes this process does not serve never block the others,
// however many are due.
func TestOtherClassesDoNotBlockScans(t *testing.T) {
	db, err := node.Open(t.TempDir(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fired := make(chan Key, 10)
	s := Start(Config{
		DB:        db,
		Classes:   []string{"mine"},
		Now:       func() time.Time { return time.UnixMilli(10_000) },
		AfterFunc: func(d time.Duration, f func()) func() bool { return func() bool { return true } },
		Fire:      func(k Key, at int64) { fired <- k },
		Logger:    slog.New(slog.DiscardHandler),
	})
	defer s.Close()
	for i := range MaxInflight + 100 {
		k := Key{NS: "theirs"}
		k.ID[0], k.ID[1] = byte(i), byte(i>>8)
		if err := s.Set(k, 1); err != nil { // due long ago
			t.Fatal(err)
		}
	}
	mine := Key{NS: "mine", ID: [32]byte{9}}
	if err := s.Set(mine, 5_000); err != nil {
		t.Fatal(err)
	}
	s.Kick()
	select {
	case k := <-fired:
		if k != mine {
			t.Fatalf("fired an alarm of class %q", k.NS)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the due alarm of a served class never fired")
	}
	if at, _ := s.Lookup(Key{NS: "theirs"}); at != 1 {
		t.Fatalf("another class's entry changed: %d", at)
	}
}

// Set, Correct and Lookup keep their meaning over many calls on the same
// statements, and what they wrote is there after the node database is
// closed (cleanly, statements and all) and opened again.
func TestIndexOpsRepeatedAndReopened(t *testing.T) {
	dir := t.TempDir()
	start := func(db *node.DB) *Scheduler {
		return Start(Config{
			DB:        db,
			Now:       func() time.Time { return time.UnixMilli(1_000) },
			AfterFunc: func(d time.Duration, f func()) func() bool { return func() bool { return true } },
			Fire:      func(k Key, at int64) { t.Errorf("alarm fired: %v at %d", k, at) },
			Logger:    slog.New(slog.DiscardHandler),
		})
	}
	key := func(i int) Key {
		k := Key{NS: "ns"}
		k.ID[0], k.ID[1] = byte(i), byte(i>>8)
		return k
	}
	const n = 500
	// want(i) is key i's entry after the ops below: every third deleted,
	// the others moved from 100_000+i to 50_000+i by an earlier Set, and
	// every other one then moved to 200_000+i by Correct.
	want := func(i int) int64 {
		switch {
		case i%3 == 0:
			return 0
		case i%2 == 0:
			return 200_000 + int64(i)
		default:
			return 50_000 + int64(i)
		}
	}

	db, err := node.Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	s := start(db)
	for i := range n {
		k := key(i)
		for _, at := range []int64{100_000, 150_000, 50_000, 90_000} { // only earlier times move it
			if err := s.Set(k, at+int64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Correct(k, 1, 2); err != nil { // not at 1: no change
			t.Fatal(err)
		}
		switch {
		case i%3 == 0:
			err = s.Correct(k, 50_000+int64(i), 0)
		case i%2 == 0:
			err = s.Correct(k, 50_000+int64(i), 200_000+int64(i))
		}
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.Lookup(k); err != nil || got != want(i) {
			t.Fatalf("key %d: entry %d (%v), want %d", i, got, err, want(i))
		}
	}
	s.Close()
	if err := db.Close(); err != nil {
		t.Fatalf("close node database: %v", err)
	}

	db, err = node.Open(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s = start(db)
	defer s.Close()
	for i := range n {
		if got, err := s.Lookup(key(i)); err != nil || got != want(i) {
			t.Fatalf("after reopening, key %d: entry %d (%v), want %d", i, got, err, want(i))
		}
	}
}
