package barrier

import (
	"errors"
	"testing"
)

// A failed sync fails every later request too: what was written after it
// cannot be trusted to reach the disk.
func TestFailureIsSticky(t *testing.T) {
	b, err := New(t.TempDir(), Syncfs)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	eio := errors.New("EIO")
	fail := true
	b.SyncFunc = func() error {
		if fail {
			return eio
		}
		return nil
	}
	wait := func() error {
		ch := make(chan error, 1)
		b.Sync(nil, func(err error) { ch <- err })
		return <-ch
	}
	if err := wait(); !errors.Is(err, eio) || !errors.Is(err, ErrFailed) {
		t.Fatalf("failing round: %v", err)
	}
	fail = false // the disk "recovers": the barrier must not believe it
	for range 3 {
		if err := wait(); !errors.Is(err, ErrFailed) {
			t.Fatalf("request after a failed round: %v, want ErrFailed", err)
		}
	}
}

func TestRoundsCoverRequests(t *testing.T) {
	b, err := New(t.TempDir(), Syncfs)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for range 5 {
		ch := make(chan error, 1)
		b.Sync(nil, func(err error) { ch <- err })
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	if rounds, reqs := b.Stats(); reqs != 5 || rounds < 1 || rounds > 5 {
		t.Fatalf("rounds %d requests %d", rounds, reqs)
	}
}
