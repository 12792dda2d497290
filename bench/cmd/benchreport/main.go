// Command benchreport turns the results written by bench/run.sh into one
// table: for each scenario, ops/s and p99 latency per server, and the ratio
// of durable's throughput to each peer's.
//
//	benchreport results.jsonl
//
// Each input line is {"server": NAME, "rep": N, "result": <loadgen --json>}
// or {"server": NAME, "missing": "why"} for a server that could not run.
// With several repetitions the median of each figure is shown.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: benchreport results.jsonl")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	defer f.Close()
	if err := report(f, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

// baseline is the server the ratios are about.
const baseline = "durable"

type line struct {
	Server  string `json:"server"`
	Rep     int    `json:"rep"`
	Missing string `json:"missing"`
	// Scenario and Error describe a run that produced no result.
	Scenario string `json:"scenario"`
	Error    string `json:"error"`
	Result   struct {
		Scenario        string           `json:"scenario"`
		Ops             int64            `json:"ops"`
		OpsPerSec       float64          `json:"ops_per_s"`
		FailedOps       int64            `json:"failed_ops"`
		TransportErrors int64            `json:"transport_errors"`
		Statuses        map[string]int64 `json:"statuses"`
		Latency         struct {
			P99 float64 `json:"p99"`
		} `json:"latency_ms"`
	} `json:"result"`
}

// maxFailed is the share of failed ops above which a figure is not compared.
const maxFailed = 0.01

// cell gathers one server's runs of one scenario.
type cell struct {
	ops, p99      []float64
	total, failed int64
	statuses      map[string]int64
	errors        []string // runs that produced no result
}

// ok reports whether c has figures worth comparing.
func (c *cell) ok() bool {
	return c != nil && len(c.ops) > 0 && float64(c.failed) <= maxFailed*float64(c.total)
}

func report(r io.Reader, w io.Writer) error {
	var servers, scenarios []string
	missing := map[string]string{}
	cells := map[[2]string]*cell{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var l line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("bad line %q: %w", sc.Text(), err)
		}
		if !slices.Contains(servers, l.Server) {
			servers = append(servers, l.Server)
		}
		if l.Missing != "" {
			missing[l.Server] = l.Missing
			continue
		}
		s := l.Result.Scenario
		if l.Error != "" {
			s = l.Scenario
		}
		if !slices.Contains(scenarios, s) {
			scenarios = append(scenarios, s)
		}
		c := cells[[2]string{s, l.Server}]
		if c == nil {
			c = &cell{statuses: map[string]int64{}}
			cells[[2]string{s, l.Server}] = c
		}
		if l.Error != "" {
			c.errors = append(c.errors, l.Error)
			continue
		}
		c.ops = append(c.ops, l.Result.OpsPerSec)
		c.p99 = append(c.p99, l.Result.Latency.P99)
		c.total += l.Result.Ops
		c.failed += l.Result.FailedOps
		for code, n := range l.Result.Statuses {
			c.statuses[code] += n
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}

	header := []string{"scenario"}
	for _, s := range servers {
		header = append(header, s+" ops/s", s+" p99")
	}
	peers := slices.DeleteFunc(slices.Clone(servers), func(s string) bool { return s == baseline })
	if slices.Contains(servers, baseline) {
		for _, p := range peers {
			header = append(header, baseline+"÷"+p)
		}
	}
	rows := [][]string{header}
	var notes []string
	for _, scen := range scenarios {
		row := []string{scen}
		for _, s := range servers {
			c := cells[[2]string{scen, s}]
			switch {
			case missing[s] != "":
				row = append(row, missing[s], "-")
			case c == nil:
				row = append(row, "-", "-")
			case len(c.ops) == 0:
				row = append(row, "failed", "-")
				notes = append(notes, fmt.Sprintf("%s on %s: %s", scen, s, strings.Join(c.errors, "; ")))
			default:
				ops := fmt.Sprintf("%.0f", median(c.ops))
				if c.failed > 0 || len(c.errors) > 0 {
					ops += "!"
					notes = append(notes, fmt.Sprintf("%s on %s: %d of %d ops failed, %d runs failed; statuses %v",
						scen, s, c.failed, c.total, len(c.errors), c.statuses))
				}
				row = append(row, ops, fmt.Sprintf("%.2fms", median(c.p99)))
			}
		}
		if slices.Contains(servers, baseline) {
			base := cells[[2]string{scen, baseline}]
			for _, p := range peers {
				peer := cells[[2]string{scen, p}]
				if !base.ok() || !peer.ok() || median(peer.ops) == 0 {
					row = append(row, "n/a")
					continue
				}
				row = append(row, fmt.Sprintf("%.2f×", median(base.ops)/median(peer.ops)))
			}
		}
		rows = append(rows, row)
	}
	printTable(w, rows)
	for s, why := range missing {
		fmt.Fprintf(w, "%s: %s\n", s, why)
	}
	for _, n := range notes {
		fmt.Fprintln(w, "!", n)
	}
	fmt.Fprintln(w, "ops/s: completed ops per second (lock-cycle: one op = acquire + release); p99 per op; ratios compare ops/s;")
	if slices.Contains(scenarios, "docs-fanout") {
		fmt.Fprintln(w, "docs-fanout: one op = a PUT until all 1,000 WebSocket clients of the document have it; durable only (- : no /v1/docs);")
	}
	fmt.Fprintf(w, "! marks failures; no ratio is given where over %.0f%% of ops failed.\n", maxFailed*100)
	return nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printTable(w io.Writer, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r {
			if i > 0 {
				b.WriteString("  ")
			}
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", widths[i]-len([]rune(c))))
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}
