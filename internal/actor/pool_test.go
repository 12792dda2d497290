package actor

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
	"time"
)

// goroutineID returns the calling goroutine's number, from its stack header.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	return string(bytes.Fields(buf)[1])
}

// A goroutine that ran a loop waits for the next one instead of exiting.
func TestPoolReusesParkedGoroutine(t *testing.T) {
	p := NewPool(time.Minute, 4)
	defer p.Close()
	ids := make(chan string)
	p.Go(func() { ids <- goroutineID() })
	first := <-ids
	// The worker parks just after fn returns; until it does, Go may start
	// another goroutine. Try until a run lands on the parked one.
	deadline := time.Now().Add(10 * time.Second)
	for {
		p.Go(func() { ids <- goroutineID() })
		if <-ids == first {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no function ran on the goroutine that ran the first one")
		}
		time.Sleep(time.Millisecond)
	}
}

// Go never blocks and runs every function, also when more are in flight
// than the pool parks, and after Close.
func TestPoolRunsEverything(t *testing.T) {
	p := NewPool(time.Millisecond, 2)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ran := 0
	block := make(chan struct{})
	for range 50 {
		wg.Add(1)
		p.Go(func() {
			defer wg.Done()
			<-block // all 50 are in flight at once
			mu.Lock()
			ran++
			mu.Unlock()
		})
	}
	close(block)
	wg.Wait()
	p.Close()
	done := make(chan struct{})
	p.Go(func() { close(done) })
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Go after Close did not run its function")
	}
	if ran != 50 {
		t.Fatalf("ran %d functions, want 50", ran)
	}
}
