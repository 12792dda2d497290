package corebench

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// WriteText writes r as the table `durable bench` prints.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	e := r.Env
	fmt.Fprintf(&b, "durable bench: %s %s/%s, %d CPUs (GOMAXPROCS %d), load average %s at start, %s at end\n",
		e.Go, e.OS, e.Arch, e.CPUs, e.GOMAXPROCS, e.LoadStart, e.LoadEnd)
	fmt.Fprintf(&b, "data in %s (%s); each configuration measured for %v in %d alternating windows, each after %v of warmup\n",
		e.Dir, e.FS, e.Duration, e.Rounds, e.Warmup)
	fmt.Fprintf(&b, "disk: 4 KiB append + fdatasync p50 %s, p99 %s\n", ms(e.Fsync.P50), ms(e.Fsync.P99))
	fmt.Fprintf(&b, "spread: (fastest - slowest window) / mean; ev/commit: events per object commit; ev/sync, commits/sync: per durability-barrier round\n")
	const row = "  %-52s %10s %7s %10s %8s %12s %10s\n"
	throughputHeader := func(title, unit string) {
		fmt.Fprintf(&b, "\n%s\n", title)
		fmt.Fprintf(&b, row, "", unit, "spread", "ev/commit", "ev/sync", "commits/sync", "mean sync")
	}
	throughput := func(t Throughput) {
		c := t.Runtime
		if c == nil {
			c = &Counters{}
		}
		spread := fmt.Sprintf("%.0f%%", 100*t.Spread())
		fmt.Fprintf(&b, row, t.Label, num(t.PerSec), spread, dec(c.EventsPerCommit), dec(c.EventsPerSync), dec(c.CommitsPerSync), ms(c.MeanSync))
	}
	if o := r.One; o != nil {
		throughputHeader(fmt.Sprintf("One object, %d callers, one KV put per event", o.Durable.Callers), "events/s")
		throughput(o.Durable)
		throughput(o.PerEvent)
		throughput(o.Bare)
		fmt.Fprintf(&b, "  group commit / bare loop = %s; group commit / one commit per event = %s\n",
			ratio(o.DurableVsBare), ratio(o.DurableVsPerEvent))
	}
	if m := r.Many; m != nil {
		throughputHeader(fmt.Sprintf("%s objects, %d callers, one KV put per event on a random object", num(float64(m.Objects)), m.Syncfs.Callers), "events/s")
		throughput(m.Syncfs)
		throughput(m.Fdatasync)
		throughput(m.PerObject)
		fmt.Fprintf(&b, "  syncfs / per-object fsync = %s; fdatasync / per-object fsync = %s; syncfs / fdatasync = %s\n",
			ratio(m.SyncfsVsPerObject), ratio(m.FdatasyncVsPerObject), ratio(m.SyncfsVsFdatasync))
	}
	if c := r.Create; c != nil {
		throughputHeader(fmt.Sprintf("New objects: each event writes one key to a fresh name (%d callers)", c.Durable.Callers), "objects/s")
		throughput(c.Durable)
		throughput(c.Naive)
		throughput(c.Files)
		fmt.Fprintf(&b, "  runtime / naive = %s; runtime / files only = %s\n", ratio(c.DurableVsNaive), ratio(c.DurableVsFiles))
	}
	if c := r.Cold; c != nil {
		const lrow = "  %-52s %10s %10s %10s %10s %10s\n"
		fmt.Fprintf(&b, "\nCold activation: %s objects of %d keys x %d bytes, one read each, one caller\n", num(float64(c.Objects)), c.Keys, FillValueSize)
		fmt.Fprintf(&b, lrow, "", "p50", "p90", "p99", "max", "samples")
		for _, l := range []Latency{c.Durable, c.Bare} {
			fmt.Fprintf(&b, lrow, l.Label, ms(l.P50), ms(l.P90), ms(l.P99), ms(l.Max), num(float64(l.Samples)))
		}
		fmt.Fprintf(&b, "  runtime p99 / bare p99 = %s\n", ratio(c.P99VsBare))
	}
	if len(r.Checks) > 0 {
		fmt.Fprintf(&b, "\nTargets (design.md)\n")
		for _, c := range r.Checks {
			met := "met"
			if !c.Met {
				met = "MISSED"
			}
			fmt.Fprintf(&b, "  %-56s %12s  target %-10s %s\n", c.Name, checkValue(c), c.Target, met)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func checkValue(c Check) string {
	switch c.Unit {
	case "x":
		return ratio(c.Value)
	case "ms":
		return fmt.Sprintf("%.3f ms", c.Value)
	}
	return num(c.Value) + c.Unit
}

// num formats f rounded, with thousands separators.
func num(f float64) string {
	s := strconv.FormatInt(int64(f+0.5), 10)
	var out []byte
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func dec(f float64) string {
	if f == 0 {
		return "-"
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

func ratio(f float64) string { return strconv.FormatFloat(f, 'f', 2, 64) + "x" }

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}
