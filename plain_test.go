package durable

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

type plainInner struct {
	S string
	F float32
	A [2]int16
}

type plainOuter struct {
	B     bool    `json:"b"`
	I     int     `json:"i,omitempty"`
	I8    int8    `json:"i8"`
	I64   int64   `json:"i64,string"`
	U     uint    `json:"u"`
	U64   uint64  `json:"u64"`
	F     float64 `json:"f,omitzero"`
	FE    float64 `json:"fe,omitempty"`
	S     string  `json:"s"`
	Named time.Duration
	In    plainInner `json:"in"`
	Arr   [3]plainInner
}

type withMarshaler struct{ T time.Time }
type withUnexported struct {
	A int
	//lint:ignore U1000 an unexported field is what makes the type not plain
	b int
}
type withDash struct {
	A int `json:"-"`
}
type withDuplicate struct { // both are "B" in JSON, which keeps only A
	A int `json:"B"`
	B int
}
type withEmbedded struct{ plainInner }
type withInvalidTag struct { // JSON ignores the tag "a§b", so X is "X" too and loses to Y
	X int `json:"a§b"`
	Y int `json:"X"`
}
type money struct {
	Amount   int64
	Currency string
}

func (m money) IsZero() bool { return m.Amount == 0 }

type withOmitzeroIsZero struct {
	M money `json:"m,omitzero"`
}
type textKey int

func (k textKey) MarshalText() ([]byte, error) { return []byte("k"), nil }

type ptrUnmarshaler struct{ A int }

func (p *ptrUnmarshaler) UnmarshalJSON([]byte) error { return nil }

func TestPlainTypes(t *testing.T) {
	for _, c := range []struct {
		t    reflect.Type
		want bool
	}{
		{reflect.TypeFor[int](), true},
		{reflect.TypeFor[string](), true},
		{reflect.TypeFor[time.Duration](), true},
		{reflect.TypeFor[[4]uint8](), true},
		{reflect.TypeFor[struct{}](), true},
		{reflect.TypeFor[plainOuter](), true},
		{reflect.TypeFor[*int](), false},
		{reflect.TypeFor[[]byte](), false},
		{reflect.TypeFor[json.RawMessage](), false},
		{reflect.TypeFor[map[string]int](), false},
		{reflect.TypeFor[any](), false},
		{reflect.TypeFor[complex128](), false},
		{reflect.TypeFor[uintptr](), false},
		{reflect.TypeFor[time.Time](), false},
		{reflect.TypeFor[withMarshaler](), false},
		{reflect.TypeFor[withUnexported](), false},
		{reflect.TypeFor[withDash](), false},
		{reflect.TypeFor[withDuplicate](), false},
		{reflect.TypeFor[withEmbedded](), false},
		{reflect.TypeFor[withInvalidTag](), false},
		{reflect.TypeFor[money](), true},
		{reflect.TypeFor[withOmitzeroIsZero](), false},
		{reflect.TypeFor[textKey](), false},
		{reflect.TypeFor[ptrUnmarshaler](), false},
		{reflect.TypeFor[[2]ptrUnmarshaler](), false},
	} {
		if got := isPlain(c.t); got != c.want {
			t.Errorf("isPlain(%v) = %v, want %v", c.t, got, c.want)
		}
	}
}

// randString draws from bytes and runes JSON treats specially: quotes,
// backslashes, control characters, HTML characters, U+2028, invalid UTF-8.
func randString(r *rand.Rand) string {
	pieces := []string{"a", "Z", "\"", "\\", "\x00", "\x1f", "\x7f", "<", ">", "&", "\u2028", "\u00e9", "\U0001F600", " ", "\n", "\t"}
	var b strings.Builder
	for range r.IntN(12) {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	if r.IntN(20) == 0 { // now and then, invalid UTF-8
		b.WriteString([]string{"\xff", "\xc3"}[r.IntN(2)])
	}
	return b.String()
}

func randFloat(r *rand.Rand) float64 {
	switch r.IntN(60) {
	case 0:
		return math.NaN()
	case 1:
		return math.Inf(1 - 2*r.IntN(2))
	case 2:
		return math.Copysign(0, -1)
	case 3:
		return math.MaxFloat64
	case 4:
		return math.SmallestNonzeroFloat64
	}
	return r.NormFloat64() * math.Pow(10, float64(r.IntN(40)-20))
}

func randOuter(r *rand.Rand) plainOuter {
	inner := func() plainInner {
		return plainInner{S: randString(r), F: float32(randFloat(r)), A: [2]int16{int16(r.Uint32()), int16(r.Uint32())}}
	}
	return plainOuter{
		B: r.IntN(2) == 1, I: int(r.Int64()) >> r.IntN(64), I8: int8(r.Uint32()), I64: r.Int64() - r.Int64(),
		U: uint(r.Uint64()), U64: r.Uint64(), F: randFloat(r), FE: randFloat(r), S: randString(r),
		Named: time.Duration(r.Int64()), In: inner(), Arr: [3]plainInner{inner(), inner(), inner()},
	}
}

// The claim plain.go rests on: a plain value that valueEncodable accepts
// decodes from its JSON to an identical value (floats compared bit for
// bit: -0 is not +0). It may refuse more than it must (any -0), never less.
func TestPlainValuesSurviveJSONUnchanged(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	accepted, refused := 0, 0
	for range 20_000 {
		v := randOuter(r)
		b, err := json.Marshal(v)
		var back plainOuter
		if err == nil {
			err = json.Unmarshal(b, &back)
		}
		// %#v tells -0 from +0, where == and reflect.DeepEqual do not.
		same := err == nil && fmt.Sprintf("%#v", back) == fmt.Sprintf("%#v", v)
		ok := valueEncodable(reflect.ValueOf(v))
		if ok && !same {
			t.Fatalf("valueEncodable accepts a value the JSON round trip (err %v) changes\nvalue %#v\nback  %#v\njson  %s", err, v, back, b)
		}
		if ok {
			accepted++
		} else {
			refused++
		}
	}
	if accepted < 100 || refused < 100 {
		t.Fatalf("the random values do not cover both sides: %d accepted, %d refused", accepted, refused)
	}
}

type plainObj struct{}

func (plainObj) Echo(_ context.Context, v plainOuter) (plainOuter, error) { return v, nil }
func (plainObj) None(context.Context) (int, error)                        { return 7, nil }

// A plain argument reaches the method as itself and a plain result comes
// back as itself; a value JSON would change or refuse takes the JSON path
// and fares as it always did.
func TestInvokePassesPlainValuesAsThemselves(t *testing.T) {
	mt := newMethodTable(reflect.TypeFor[plainObj]())
	ctx := context.Background()
	want := reflect.TypeFor[plainOuter]()
	v := plainOuter{I: 1, S: "<ok>", In: plainInner{S: "é"}, Named: time.Second}

	res, err := mt.invoke(ctx, plainObj{}, "Echo", rpcArg{value: v}, want)
	if err != nil || !res.isValue || res.value.(plainOuter) != v {
		t.Fatalf("Echo(plain) = %+v, %v; want the value itself", res, err)
	}
	// The caller decodes into another type: the result is JSON.
	res, err = mt.invoke(ctx, plainObj{}, "Echo", rpcArg{value: v}, nil)
	if err != nil || res.isValue || !strings.Contains(string(res.json), `"s":"\u003cok\u003e"`) {
		t.Fatalf("Echo for a JSON caller = %s, %v", res.json, err)
	}
	// A result JSON would change (invalid UTF-8) is encoded, as before.
	bad := v
	bad.S = "a\xffb"
	res, err = mt.invoke(ctx, plainObj{}, "Echo", rpcArg{value: bad}, want)
	if err != nil || res.isValue || !strings.Contains(string(res.json), `"s":"a\ufffdb"`) {
		t.Fatalf("Echo(invalid UTF-8) = %+v %s, %v; want the JSON path", res, res.json, err)
	}
	// A plain value of another type than the parameter's is decoded as
	// the JSON it stands for.
	type other struct {
		S string `json:"s"`
	}
	res, err = mt.invoke(ctx, plainObj{}, "Echo", rpcArg{value: other{S: "x"}}, want)
	if err != nil || res.value.(plainOuter).S != "x" {
		t.Fatalf("Echo(other) = %+v, %v", res, err)
	}
	if _, err := mt.invoke(ctx, plainObj{}, "None", rpcArg{value: 3}, nil); err == nil || !strings.Contains(err.Error(), "takes no argument") {
		t.Fatalf("None(3) = %v, want takes no argument", err)
	}
	if res, err := mt.invoke(ctx, plainObj{}, "None", rpcArg{}, reflect.TypeFor[int]()); err != nil || res.value != 7 {
		t.Fatalf("None() = %+v, %v", res, err)
	}
}

type benchReq struct {
	Limit     int64  `json:"limit"`
	WindowMS  int64  `json:"window_ms"`
	Cost      int64  `json:"cost"`
	Algorithm string `json:"algorithm"`
}

type benchRes struct {
	Allowed      bool  `json:"allowed"`
	Remaining    int64 `json:"remaining"`
	ResetMS      int64 `json:"reset_ms"`
	RetryAfterMS int64 `json:"retry_after_ms"`
}

type benchObj struct{}

func (benchObj) Check(_ context.Context, r benchReq) (benchRes, error) {
	return benchRes{Allowed: true, Remaining: r.Limit - r.Cost, ResetMS: r.WindowMS}, nil
}

// BenchmarkCallPlain is a call shaped like a rate-limit check (a read:
// no sync) as Call makes it, with plain values passed as themselves, and
// as Call made it before, through JSON both ways (the baseline, in the
// same process).
func BenchmarkCallPlain(b *testing.B) {
	rt := NewRuntime(b.TempDir())
	ns, err := rt.Register("bench", func(*State) any { return benchObj{} })
	if err != nil {
		b.Fatal(err)
	}
	if err := rt.Open(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close(context.Background()) })
	s := ns.GetByName("k")
	ctx := context.Background()
	req := benchReq{Limit: 100, WindowMS: 60_000, Cost: 1, Algorithm: "sliding_log"}
	b.Run("value", func(b *testing.B) {
		for b.Loop() {
			if r, err := Call[benchRes](ctx, s, "Check", req); err != nil || r.Remaining != 99 {
				b.Fatal(r, err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			arg, err := json.Marshal(req)
			if err != nil {
				b.Fatal(err)
			}
			out, err := s.Invoke(ctx, "Check", arg)
			var r benchRes
			if err == nil {
				err = json.Unmarshal(out, &r)
			}
			if err != nil || r.Remaining != 99 {
				b.Fatal(r, err)
			}
		}
	})
}
