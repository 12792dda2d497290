package corebench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestRunSmall runs every scenario at a tiny scale: it checks that the
// suite works and reports, not how fast anything is.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a few hundred small databases")
	}
	cfg := Config{
		Dir:           t.TempDir(),
		Duration:      150 * time.Millisecond,
		Rounds:        1,
		Warmup:        10 * time.Millisecond,
		OneCallers:    4,
		ManyObjects:   10,
		ManyCallers:   8,
		CreateCallers: 4,
		ColdObjects:   5,
		ColdKeys:      2,
	}
	r, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Under -race on a busy machine an fsync-bound configuration may
	// complete nothing in 150 ms; the CPU-bound ones always do.
	for name, tp := range map[string]Throughput{
		"one/durable": r.One.Durable, "one/bare": r.One.Bare, "many/syncfs": r.Many.Syncfs,
		"create/durable": r.Create.Durable, "create/files": r.Create.Files,
	} {
		if tp.Events <= 0 || tp.PerSec <= 0 || len(tp.Rounds) != 1 {
			t.Errorf("%s: %d events, %.0f/s, rounds %v", name, tp.Events, tp.PerSec, tp.Rounds)
		}
	}
	if c := r.One.Durable.Runtime; c == nil || c.SyncRounds == 0 {
		t.Errorf("one/durable: no barrier rounds counted: %+v", c)
	}
	if c := r.Many.PerObject.Runtime; c == nil || c.SyncRounds != 0 {
		t.Errorf("many/per-object: barrier rounds without a barrier: %+v", c)
	}
	if r.Cold.Durable.Samples < cfg.ColdObjects || r.Cold.Bare.Samples < cfg.ColdObjects {
		t.Errorf("cold: %d and %d samples, want at least %d", r.Cold.Durable.Samples, r.Cold.Bare.Samples, cfg.ColdObjects)
	}
	if len(r.Checks) != 5 {
		t.Errorf("%d checks, want 5", len(r.Checks))
	}

	var text bytes.Buffer
	if err := WriteText(&text, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"One object", "objects, 8 callers", "New objects", "Cold activation", "Targets"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, text.String())
		}
	}
	if _, err := json.Marshal(r); err != nil {
		t.Fatal(err)
	}
}

func TestRunOnly(t *testing.T) {
	if _, err := Run(context.Background(), Config{Dir: t.TempDir()}, []string{"nope"}); err == nil {
		t.Fatal("unknown scenario accepted")
	}
}

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i))
	}
	l := Summarize(ds)
	if l.P50 != 50 || l.P90 != 90 || l.P99 != 99 || l.Max != 100 || l.Samples != 100 {
		t.Fatalf("Summarize(1..100) = %+v", l)
	}
}

func TestNum(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567"} {
		if got := num(in); got != want {
			t.Errorf("num(%v) = %q, want %q", in, got, want)
		}
	}
}
