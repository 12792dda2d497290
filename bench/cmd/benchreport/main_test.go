package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func result(server string, rep int, scenario string, ops, p99 float64, failed int) string {
	return fmt.Sprintf(`{"server":%q,"rep":%d,"result":{"scenario":%q,"ops":%d,"ops_per_s":%g,"failed_ops":%d,"latency_ms":{"p99":%g}}}`,
		server, rep, scenario, int(ops), ops, failed, p99)
}

func TestReportRatiosAndMedians(t *testing.T) {
	in := strings.Join([]string{
		result("durable", 0, "s1", 3000, 2, 0),
		result("redis", 0, "s1", 1000, 4, 0),
		result("redis", 1, "s1", 2000, 6, 0),
		result("redis", 2, "s1", 1500, 5, 3),
		result("durable", 1, "s1", 3000, 2, 0),
	}, "\n")
	var out bytes.Buffer
	if err := report(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	// durable median 3000, redis median 1500: ratio 2.00×; redis p99 median 5.
	for _, want := range []string{"durable÷redis", "3000", "1500!", "5.00ms", "2.00×", "s1 on redis: 3 of 4500 ops failed"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

func TestReportMissingBaseline(t *testing.T) {
	in := `{"server":"durable","missing":"not built yet"}` + "\n" + result("workerd", 0, "s1", 800, 3, 0)
	var out bytes.Buffer
	if err := report(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"not built yet", "800", "n/a", "durable: not built yet"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

func TestReportNoRatioForFailingRuns(t *testing.T) {
	in := strings.Join([]string{
		result("durable", 0, "s1", 9000, 1, 9000), // every op failed (e.g. 404)
		result("redis", 0, "s1", 1000, 4, 0),
		`{"server":"durable","rep":0,"scenario":"s2","error":"loadgen failed"}`,
		result("redis", 0, "s2", 1000, 4, 0),
	}, "\n")
	var out bytes.Buffer
	if err := report(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if strings.Contains(got, "9.00×") {
		t.Errorf("ratio computed from failed ops:\n%s", got)
	}
	for _, want := range []string{"9000!", "failed", "s2 on durable: loadgen failed", "n/a"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
}

// docs-fanout runs on durable only: the peers' cells are "-", with no ratio
// and no failure.
func TestReportDurableOnlyScenario(t *testing.T) {
	in := strings.Join([]string{
		result("durable", 0, "s1", 3000, 2, 0),
		result("redis", 0, "s1", 1000, 4, 0),
		result("durable", 0, "docs-fanout", 45, 80, 0),
	}, "\n")
	var out bytes.Buffer
	if err := report(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	var row string
	for l := range strings.Lines(got) {
		if strings.HasPrefix(l, "docs-fanout ") {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) != 6 || f[1] != "45" || f[2] != "80.00ms" || f[3] != "-" || f[4] != "-" || f[5] != "n/a" {
		t.Errorf("docs-fanout row %q, want 45 80.00ms - - n/a:\n%s", row, got)
	}
	if strings.Contains(row, "!") || strings.Contains(row, "failed") || strings.Contains(got, "\n! docs-fanout") {
		t.Errorf("a durable-only scenario reported as a failure:\n%s", got)
	}
	if !strings.Contains(got, "docs-fanout: one op") {
		t.Errorf("no note on docs-fanout:\n%s", got)
	}
}
