package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// slogLine is what slog's own TextHandler writes for r.
func slogLine(t testing.TB, r slog.Record) string {
	t.Helper()
	var buf bytes.Buffer
	if err := slog.NewTextHandler(&buf, nil).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// ourLine is what textHandler writes for r.
func ourLine(t testing.TB, r slog.Record) string {
	t.Helper()
	var buf bytes.Buffer
	if err := newTextHandler(&buf).Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func record(tm time.Time, level slog.Level, msg string, attrs ...slog.Attr) slog.Record {
	r := slog.NewRecord(tm, level, msg, 0)
	r.AddAttrs(attrs...)
	return r
}

// checkFast checks that r takes the fast path and that it and Handle write
// what TextHandler writes.
func checkFast(t *testing.T, name string, r slog.Record) {
	t.Helper()
	want := slogLine(t, r)
	b, ok := appendRecord(nil, r)
	if !ok {
		t.Errorf("%s: took the slow path", name)
	}
	if got := string(b); got != want {
		t.Errorf("%s:\n got %q\nwant %q", name, got, want)
	}
	if got := ourLine(t, r); got != want {
		t.Errorf("%s: Handle:\n got %q\nwant %q", name, got, want)
	}
}

// trickyStrings are keys and values around TextHandler's quoting rules.
var trickyStrings = []string{
	"", "a", "request", "GET", "/v1/sessions/abc-123_x.y~z", "a b", " ", "=", "a=b", `"`, `a"b`, `\`, `a\b`,
	"\x00", "\x01", "\x1f", "\x7f", "a\x7fb", "\t", "a\tb", "\n", "\r\n", "'", "`", "#!$%&()*+,-./:;<>?@[]^_{|}~",
	"é", "ßtraße", "日本語", "😀", "\u00a0", "a\u00a0b", "\u2028", "\u2029", "\u3000", "\u0085", "\u200b", "\ufeff",
	"\u00ad", "\ue000", "\ufffd", "a\ufffdb", "\xff", "a\xffb", "\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80",
	"\u0300", "e\u0301", "12", "-1", "true", "null", "NaN", strings.Repeat("x", 300),
}

var trickyFloats = []float64{
	0, math.Copysign(0, -1), 0.033, 1.5, -2.25, 1e20, 1e21, 1e-7, 123456789.123, math.MaxFloat64,
	math.SmallestNonzeroFloat64, math.NaN(), math.Inf(1), math.Inf(-1), float64(1234) / 1000,
}

// TestTextHandlerMatchesSlog checks hand-picked records that take the fast
// path against slog's TextHandler, byte for byte.
func TestTextHandlerMatchesSlog(t *testing.T) {
	now := time.Now() // has a monotonic reading
	kolkata := time.FixedZone("IST", 5*3600+1800)
	lmt := time.FixedZone("LMT", -(4*3600 + 56*60 + 2)) // an offset with seconds
	times := []time.Time{
		{}, now, now.UTC(), now.In(kolkata), now.In(lmt),
		time.Date(2025, 11, 27, 12, 25, 3, 0, time.UTC),
		time.Date(2025, 11, 27, 12, 25, 3, 999_999_999, kolkata),
		time.Date(2025, 12, 31, 23, 59, 59, 999_950_000, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 123_456_789, lmt),
		time.Date(10000, 1, 1, 0, 0, 0, 5_000_000, time.UTC),
		time.Date(-1, 3, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0).In(kolkata),
		time.Unix(-1, 1_000_000),
	}
	for i, tm := range times {
		checkFast(t, "time "+tm.String(), record(tm, slog.LevelInfo, "t", slog.Int("i", i)))
	}
	for l := slog.LevelDebug - 6; l <= slog.LevelError+6; l++ {
		checkFast(t, "level "+l.String(), record(now, l, "l"))
	}
	for _, s := range trickyStrings {
		checkFast(t, "msg "+s, record(now, slog.LevelInfo, s))
		checkFast(t, "key "+s, record(now, slog.LevelInfo, "k", slog.String(s, "v")))
		checkFast(t, "value "+s, record(now, slog.LevelInfo, "v", slog.String("k", s)))
		checkFast(t, "key and value "+s, record(now, slog.LevelInfo, "kv", slog.String(s, s), slog.Bool(s, true)))
	}
	for _, f := range trickyFloats {
		checkFast(t, "float", record(now, slog.LevelInfo, "f", slog.Float64("f", f), slog.Float64("", f)))
	}
	checkFast(t, "integers", record(now, slog.LevelWarn, "n",
		slog.Int("zero", 0), slog.Int("neg", -1), slog.Int64("min", math.MinInt64), slog.Int64("max", math.MaxInt64),
		slog.Uint64("umax", math.MaxUint64), slog.Uint64("u0", 0), slog.Bool("t", true), slog.Bool("f", false)))
	checkFast(t, "empty keys", record(now, slog.LevelInfo, "",
		slog.String("", ""), slog.Int("", 0), slog.Uint64("", 0), slog.Float64("", 0), slog.Bool("", false)))
	checkFast(t, "empty group", record(now, slog.LevelInfo, "g", slog.Group("g"))) // AddAttrs drops it
	checkFast(t, "no attrs", record(time.Time{}, slog.LevelError, ""))
	checkFast(t, "access log", accessLogRecord(now))
}

// TestTextHandlerSlowPath checks that what the fast path does not format
// goes to TextHandler, and comes out the same.
func TestTextHandlerSlowPath(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name string
		attr slog.Attr
	}{
		{"any", slog.Any("a", []int{1, 2})},
		{"any error", slog.Any("err", io.EOF)},
		{"any nil", slog.Any("n", nil)},
		{"zero attr", slog.Attr{}},
		{"bytes", slog.Any("b", []byte("a b"))},
		{"group", slog.Group("g", slog.String("a", "x y"), slog.Int("b", 2))},
		{"group without key", slog.Group("", slog.String("a", "1"))},
		{"duration", slog.Duration("d", 1500*time.Millisecond)},
		{"time", slog.Time("t", now)},
		{"log valuer", slog.Any("lv", slog.LevelWarn)},
	} {
		r := record(now, slog.LevelInfo, "slow", slog.String("before", "b"), tc.attr, slog.Int("after", 1))
		if _, ok := appendRecord(nil, r); ok {
			t.Errorf("%s: took the fast path", tc.name)
		}
		if got, want := ourLine(t, r), slogLine(t, r); got != want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, want)
		}
	}

	// WithAttrs and WithGroup hand over to TextHandler for good.
	var got, want bytes.Buffer
	ours := slog.New(newTextHandler(&got))
	theirs := slog.New(slog.NewTextHandler(&want, nil))
	for _, l := range []*slog.Logger{ours, theirs} {
		l.With("svc", "durable").Info("with", "n", 1)
		l.WithGroup("g").Info("group", "k", "a b")
		l.WithGroup("g").With("x", 1).WithGroup("h").Warn("nested", "k", 2.5)
		l.WithGroup("g").Info("group without attrs")
		l.Debug("not enabled")
	}
	// The lines carry different times; compare them without.
	clean := func(s string) string {
		var lines []string
		for line := range strings.Lines(s) {
			_, rest, _ := strings.Cut(line, " ")
			lines = append(lines, rest)
		}
		return strings.Join(lines, "")
	}
	if g, w := clean(got.String()), clean(want.String()); g != w {
		t.Errorf("With/WithGroup:\n got %q\nwant %q", g, w)
	}
}

// TestTextHandlerRandom compares random records of tricky keys and values.
func TestTextHandlerRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pieces := append(trickyStrings[:len(trickyStrings)-1:len(trickyStrings)-1], "x", "Y", "7", "-", ".", "/")
	randString := func() string {
		var sb strings.Builder
		for range rng.IntN(5) {
			sb.WriteString(pieces[rng.IntN(len(pieces))])
		}
		return sb.String()
	}
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("", -7*3600), time.FixedZone("X", 3600+17)}
	for i := range 5000 {
		var tm time.Time
		if rng.IntN(10) > 0 {
			tm = time.Unix(rng.Int64N(1<<35)-1<<34, rng.Int64N(1e9)).In(zones[rng.IntN(len(zones))])
		}
		r := slog.NewRecord(tm, slog.Level(rng.IntN(24)-10), randString(), 0)
		for range rng.IntN(9) {
			key := randString()
			switch rng.IntN(6) {
			case 0, 1:
				r.AddAttrs(slog.String(key, randString()))
			case 2:
				r.AddAttrs(slog.Int64(key, int64(rng.Uint64())>>rng.IntN(64)))
			case 3:
				r.AddAttrs(slog.Uint64(key, rng.Uint64()>>rng.IntN(64)))
			case 4:
				f := math.Float64frombits(rng.Uint64())
				if rng.IntN(2) == 0 {
					f = trickyFloats[rng.IntN(len(trickyFloats))]
				}
				r.AddAttrs(slog.Float64(key, f))
			case 5:
				r.AddAttrs(slog.Bool(key, rng.IntN(2) == 0))
			}
		}
		if i%10 == 0 {
			r.AddAttrs(slog.Duration(randString(), time.Duration(rng.Int64())))
		}
		if got, want := ourLine(t, r), slogLine(t, r); got != want {
			t.Fatalf("record %d:\n got %q\nwant %q", i, got, want)
		}
	}
}

// TestAppendQuoted checks the ASCII quoting against strconv.Quote for
// every byte, alone and between others.
func TestAppendQuoted(t *testing.T) {
	for c := range 256 {
		for _, s := range []string{string(byte(c)), "a" + string(byte(c)) + "b", "\x00" + string(byte(c)) + "é"} {
			if got, want := string(appendQuoted([]byte("k="), s)), "k="+strconv.Quote(s); got != want {
				t.Errorf("appendQuoted(%q) = %s, want %s", s, got, want)
			}
		}
	}
}

// countingWriter records each Write.
type countingWriter struct {
	mu     sync.Mutex
	writes []string
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

// TestTextHandlerOneWrite checks that every record, fast or slow, is one
// Write of one whole line.
func TestTextHandlerOneWrite(t *testing.T) {
	w := &countingWriter{}
	log := slog.New(newTextHandler(w))
	log.Info("fast", "k", "a\nb", "n", 1)
	log.Warn("slow", "d", time.Second)
	log.With("a", 1).Error("with")
	log.WithGroup("g").Info("group", "k", "v")
	log.Debug("not enabled")
	log.LogAttrs(context.Background(), slog.LevelInfo, "access", accessLogRecordAttrs...)
	if len(w.writes) != 5 {
		t.Fatalf("%d writes, want 5: %q", len(w.writes), w.writes)
	}
	for _, line := range w.writes {
		if strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
			t.Errorf("write %q is not one line", line)
		}
	}
}

var accessLogRecordAttrs = []slog.Attr{
	slog.String("id", "Zm9vYmFyYmF6cXV4"), slog.String("method", "GET"),
	slog.String("path", "/v1/sessions/7f3a9c2e-user-42"), slog.String("route", "GET /v1/sessions/{id}"),
	slog.Int("status", 200), slog.Int64("bytes", 187), slog.Float64("duration_ms", 0.033),
}

// accessLogRecord has the shape of the gateway's access log line.
func accessLogRecord(tm time.Time) slog.Record {
	return record(tm, slog.LevelInfo, "request", accessLogRecordAttrs...)
}

// BenchmarkAccessLogLine formats the gateway's access log line with slog's
// TextHandler and with textHandler.
func BenchmarkAccessLogLine(b *testing.B) {
	r := accessLogRecord(time.Now())
	for _, bc := range []struct {
		name string
		h    slog.Handler
	}{
		{"slog-text", slog.NewTextHandler(io.Discard, nil)},
		{"fast", newTextHandler(io.Discard)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				bc.h.Handle(ctx, r)
			}
		})
	}
}
