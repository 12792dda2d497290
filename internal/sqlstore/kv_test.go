package sqlstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/durableobjects/durable/internal/sqlstore"
)

func TestKVGetPutDelete(t *testing.T) {
	ts := newTestStore(t)
	puts := []struct {
		key   string
		value []byte
	}{
		{"a", []byte("1")},
		{"", []byte("the empty key")},
		{"nil value", nil},
		{"empty value", []byte{}},
		{"日本", []byte("utf-8 key")},
		{"bin\x00\xff", []byte{0, 1, 2, 0xff}},
		{"over", []byte("first")},
		{"over", []byte("second")}, // overwrite
	}
	gets := []struct {
		key  string
		want string
	}{
		{"a", "1"},
		{"", "the empty key"},
		{"nil value", ""},
		{"empty value", ""},
		{"日本", "utf-8 key"},
		{"bin\x00\xff", "\x00\x01\x02\xff"},
		{"bin", "<missing>"},
		{"over", "second"},
		{"missing", "<missing>"},
		{"A", "<missing>"}, // keys are case sensitive
	}
	check := func(when string) {
		ts.event(func(s *sqlstore.Store) {
			for _, g := range gets {
				if got := getString(t, s, g.key); got != g.want {
					t.Errorf("%s: Get(%q) = %q, want %q", when, g.key, got, g.want)
				}
			}
		})
	}
	ts.event(func(s *sqlstore.Store) {
		for _, p := range puts {
			mustPut(t, s, p.key, p.value)
		}
	})
	check("same store")
	ts.reopen()
	check("after reopen")

	// Empty and nil values exist: they are not missing.
	ts.event(func(s *sqlstore.Store) {
		for _, k := range []string{"nil value", "empty value"} {
			v, ok, err := s.Get(k)
			if err != nil || !ok || len(v) != 0 {
				t.Errorf("Get(%q) = %q, %v, %v; want an empty value that exists", k, v, ok, err)
			}
		}
	})

	deletes := []struct {
		key  string
		want bool
	}{
		{"a", true},
		{"a", false}, // already gone
		{"missing", false},
		{"", true},
		{"empty value", true},
		{"A", false},
	}
	ts.event(func(s *sqlstore.Store) {
		for _, d := range deletes {
			got, err := s.Delete(d.key)
			if err != nil {
				t.Fatalf("Delete(%q): %v", d.key, err)
			}
			if got != d.want {
				t.Errorf("Delete(%q) = %v, want %v", d.key, got, d.want)
			}
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		for _, k := range []string{"a", "", "empty value"} {
			if got := getString(t, s, k); got != "<missing>" {
				t.Errorf("after Delete, Get(%q) = %q", k, got)
			}
		}
		if got := getString(t, s, "over"); got != "second" {
			t.Errorf("an undeleted key changed: %q", got)
		}
	})
}

func TestKVValuesAreCopies(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		v := []byte("abc")
		mustPut(t, s, "k", v)
		v[0] = 'X' // the caller reusing its buffer
		got, _, _ := s.Get("k")
		got[1] = 'Y' // the caller scribbling on a result
		if got := getString(t, s, "k"); got != "abc" {
			t.Errorf("stored value changed through a caller's slice: %q", got)
		}
	})
}

func TestKVBatch(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		err := s.PutMany([]sqlstore.Entry{
			{Key: "a", Value: []byte("1")},
			{Key: "b", Value: []byte("2")},
			{Key: "", Value: []byte("empty key")},
			{Key: "nil", Value: nil},
			{Key: "é", Value: []byte("3")},
		})
		if err != nil {
			t.Fatalf("PutMany: %v", err)
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		got, err := s.GetMany([]string{"a", "missing", "", "nil", "é", "b", "a"})
		if err != nil {
			t.Fatalf("GetMany: %v", err)
		}
		want := map[string]string{"a": "1", "": "empty key", "nil": "", "é": "3", "b": "2"}
		if len(got) != len(want) {
			t.Errorf("GetMany returned %d entries %q, want %d", len(got), got, len(want))
		}
		for k, w := range want {
			v, ok := got[k]
			if !ok || string(v) != w {
				t.Errorf("GetMany[%q] = %q, %v; want %q", k, v, ok, w)
			}
		}
		if _, ok := got["missing"]; ok {
			t.Error("GetMany returned a missing key")
		}
		none, err := s.GetMany(nil)
		if err != nil || len(none) != 0 {
			t.Errorf("GetMany(nil) = %v, %v", none, err)
		}
	})
	tests := []struct {
		keys []string
		want int
	}{
		{[]string{"a", "missing"}, 1},
		{[]string{"a"}, 0},           // already deleted
		{[]string{"b", "b", "b"}, 1}, // a key counts once
		{[]string{"", "nil", "é"}, 3},
		{nil, 0},
	}
	for _, tt := range tests {
		ts.event(func(s *sqlstore.Store) {
			got, err := s.DeleteMany(tt.keys)
			if err != nil {
				t.Fatalf("DeleteMany(%q): %v", tt.keys, err)
			}
			if got != tt.want {
				t.Errorf("DeleteMany(%q) = %d, want %d", tt.keys, got, tt.want)
			}
		})
	}
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if keys := listKeys(t, s, sqlstore.ListOptions{}); len(keys) != 0 {
			t.Errorf("keys left after deleting all of them: %q", keys)
		}
	})
}

// listKeysSorted are the keys of the List tests in UTF-8 byte order.
var listKeysSorted = []string{
	"",
	"a",
	"a/1",
	"a/2",
	"a/3",
	"ab",
	"a\xff",
	"a\xff\x00",
	"a\xff\xff",
	"b",
	"b/1",
	"z",
	"é",  // c3 a9
	"ÿ",  // c3 bf (U+00FF)
	"日本", // e6 97 a5 e6 9c ac
	"\xff",
	"\xff\xff",
	"\xff\xff\x01",
}

func fillListKeys(t *testing.T) *testStore {
	ts := newTestStore(t)
	if !slices.IsSorted(listKeysSorted) { // Go compares strings bytewise
		t.Fatal("listKeysSorted is not in byte order")
	}
	ts.event(func(s *sqlstore.Store) {
		// Insert out of order so the order comes from the store.
		for i := len(listKeysSorted) - 1; i >= 0; i-- {
			k := listKeysSorted[(i*7)%len(listKeysSorted)]
			mustPut(t, s, k, []byte("v:"+k))
		}
	})
	ts.reopen()
	return ts
}

func TestKVListOrderAndValues(t *testing.T) {
	ts := fillListKeys(t)
	ts.event(func(s *sqlstore.Store) {
		es, err := s.List(sqlstore.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range es {
			got = append(got, e.Key)
			if string(e.Value) != "v:"+e.Key {
				t.Errorf("List entry %q has value %q", e.Key, e.Value)
			}
		}
		if !slices.Equal(got, listKeysSorted) {
			t.Errorf("List() keys\n got %q\nwant %q", got, listKeysSorted)
		}
	})
}

func TestKVListOptions(t *testing.T) {
	ts := fillListKeys(t)
	type O = sqlstore.ListOptions
	all := listKeysSorted
	rev := func(s []string) []string { s = slices.Clone(s); slices.Reverse(s); return s }
	tests := []struct {
		name string
		opts O
		want []string
	}{
		{"no options", O{}, all},
		{"prefix", O{Prefix: "a/"}, []string{"a/1", "a/2", "a/3"}},
		{"prefix that is a key", O{Prefix: "a"}, []string{"a", "a/1", "a/2", "a/3", "ab", "a\xff", "a\xff\x00", "a\xff\xff"}},
		{"prefix ending in 0xff", O{Prefix: "a\xff"}, []string{"a\xff", "a\xff\x00", "a\xff\xff"}},
		{"prefix of one 0xff", O{Prefix: "\xff"}, []string{"\xff", "\xff\xff", "\xff\xff\x01"}},
		{"prefix of two 0xff", O{Prefix: "\xff\xff"}, []string{"\xff\xff", "\xff\xff\x01"}},
		{"prefix of a UTF-8 lead byte", O{Prefix: "\xc3"}, []string{"é", "ÿ"}},
		{"multibyte prefix", O{Prefix: "日"}, []string{"日本"}},
		{"prefix matching nothing", O{Prefix: "nope"}, nil},
		{"start is inclusive", O{Start: "b"}, []string{"b", "b/1", "z", "é", "ÿ", "日本", "\xff", "\xff\xff", "\xff\xff\x01"}},
		{"start between keys", O{Start: "b/0"}, []string{"b/1", "z", "é", "ÿ", "日本", "\xff", "\xff\xff", "\xff\xff\x01"}},
		{"startAfter is exclusive", O{StartAfter: "b"}, []string{"b/1", "z", "é", "ÿ", "日本", "\xff", "\xff\xff", "\xff\xff\x01"}},
		{"startAfter the empty key's successor", O{StartAfter: "\x00"}, all[1:]},
		{"end is exclusive", O{End: "a/2"}, []string{"", "a", "a/1"}},
		{"end between keys", O{End: "a/15"}, []string{"", "a", "a/1"}},
		{"start and end", O{Start: "a/1", End: "a/3"}, []string{"a/1", "a/2"}},
		{"startAfter and end", O{StartAfter: "a/1", End: "a/3"}, []string{"a/2"}},
		{"start equals end", O{Start: "b", End: "b"}, nil},
		{"start after end", O{Start: "z", End: "b"}, nil},
		{"non-ASCII range", O{Start: "é", End: "日本"}, []string{"é", "ÿ"}},
		{"reverse", O{Reverse: true}, rev(all)},
		{"reverse keeps the range", O{Start: "a/1", End: "a/3", Reverse: true}, []string{"a/2", "a/1"}},
		{"reverse with startAfter", O{StartAfter: "z", End: "\xff", Reverse: true}, []string{"日本", "ÿ", "é"}},
		{"limit", O{Limit: 3}, []string{"", "a", "a/1"}},
		{"limit larger than the range", O{Prefix: "b", Limit: 100}, []string{"b", "b/1"}},
		{"reverse and limit", O{Reverse: true, Limit: 2}, []string{"\xff\xff\x01", "\xff\xff"}},
		{"prefix and start", O{Prefix: "a/", Start: "a/2"}, []string{"a/2", "a/3"}},
		{"prefix and startAfter", O{Prefix: "a/", StartAfter: "a/2"}, []string{"a/3"}},
		{"prefix and end", O{Prefix: "a/", End: "a/3"}, []string{"a/1", "a/2"}},
		{"prefix and start before it", O{Prefix: "a/", Start: "0"}, []string{"a/1", "a/2", "a/3"}},
		{"prefix and start after it", O{Prefix: "a/", Start: "b"}, nil},
		{"prefix and end before it", O{Prefix: "a/", End: "a"}, nil},
		{"prefix and end after it", O{Prefix: "a/", End: "zzz"}, []string{"a/1", "a/2", "a/3"}},
		{"prefix and startAfter equal to it", O{Prefix: "a", StartAfter: "a"}, []string{"a/1", "a/2", "a/3", "ab", "a\xff", "a\xff\x00", "a\xff\xff"}},
		{"0xff prefix and end", O{Prefix: "\xff", End: "\xff\xff\x01"}, []string{"\xff", "\xff\xff"}},
		{"prefix, reverse, limit", O{Prefix: "a", Reverse: true, Limit: 2}, []string{"a\xff\xff", "a\xff\x00"}},
		{"everything at once", O{Prefix: "a", StartAfter: "a/1", End: "a\xff\xff", Reverse: true, Limit: 3}, []string{"a\xff\x00", "a\xff", "ab"}},
	}
	ts.event(func(s *sqlstore.Store) {
		for _, tt := range tests {
			got := listKeys(t, s, tt.opts)
			if !slices.Equal(got, tt.want) && !(len(got) == 0 && len(tt.want) == 0) {
				t.Errorf("%s: List(%#v)\n got %q\nwant %q", tt.name, tt.opts, got, tt.want)
			}
		}
	})
}

// TestKVListMatchesModel compares List with a direct reading of the
// options' meaning over every combination of a grid of options.
func TestKVListMatchesModel(t *testing.T) {
	ts := fillListKeys(t)
	model := func(o sqlstore.ListOptions) []string {
		var out []string
		for _, k := range listKeysSorted {
			if strings.HasPrefix(k, o.Prefix) &&
				(o.Start == "" || k >= o.Start) &&
				(o.StartAfter == "" || k > o.StartAfter) &&
				(o.End == "" || k < o.End) {
				out = append(out, k)
			}
		}
		if o.Reverse {
			slices.Reverse(out)
		}
		if o.Limit > 0 && len(out) > o.Limit {
			out = out[:o.Limit]
		}
		return out
	}
	prefixes := []string{"", "a", "a/", "a\xff", "\xc3", "\xff", "\xff\xff", "q"}
	starts := []string{"", "a/2", "ab", "b", "\xff"}
	ends := []string{"", "a/3", "a\xff\x00", "b", "ÿ", "\xff\xff"}
	n := 0
	ts.event(func(s *sqlstore.Store) {
		for _, p := range prefixes {
			for _, st := range starts {
				for _, sa := range starts {
					if st != "" && sa != "" {
						continue
					}
					for _, e := range ends {
						for _, r := range []bool{false, true} {
							for _, l := range []int{0, 1, 2, 5} {
								o := sqlstore.ListOptions{Prefix: p, Start: st, StartAfter: sa, End: e, Reverse: r, Limit: l}
								got, want := listKeys(t, s, o), model(o)
								n++
								if !slices.Equal(got, want) {
									t.Errorf("List(%#v)\n got %q\nwant %q", o, got, want)
								}
							}
						}
					}
				}
			}
		}
	})
	if n < 1000 {
		t.Fatalf("only %d combinations checked", n)
	}
}

func TestKVListInvalidOptions(t *testing.T) {
	ts := fillListKeys(t)
	tests := []struct {
		name string
		opts sqlstore.ListOptions
	}{
		{"start and startAfter", sqlstore.ListOptions{Start: "a", StartAfter: "b"}},
		{"start and startAfter equal", sqlstore.ListOptions{Start: "a", StartAfter: "a"}},
		{"negative limit", sqlstore.ListOptions{Limit: -1}},
		{"negative limit with other options", sqlstore.ListOptions{Prefix: "a", Limit: -5}},
	}
	ts.event(func(s *sqlstore.Store) {
		for _, tt := range tests {
			es, err := s.List(tt.opts)
			if !errors.Is(err, sqlstore.ErrInvalidList) {
				t.Errorf("%s: List(%#v) = %d entries, %v; want ErrInvalidList", tt.name, tt.opts, len(es), err)
			}
		}
	})
	// A virgin object validates its options too.
	ts2 := newTestStore(t)
	ts2.event(func(s *sqlstore.Store) {
		for _, tt := range tests {
			if _, err := s.List(tt.opts); !errors.Is(err, sqlstore.ErrInvalidList) {
				t.Errorf("virgin object: %s: err = %v, want ErrInvalidList", tt.name, err)
			}
		}
	})
}

func TestKVKeySizeLimit(t *testing.T) {
	atLimit := strings.Repeat("k", sqlstore.MaxKeySize)
	atLimitUTF8 := strings.Repeat("é", sqlstore.MaxKeySize/2) // 2048 bytes, 1024 characters
	past := atLimit + "k"
	pastUTF8 := strings.Repeat("é", sqlstore.MaxKeySize/2) + "x"
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		mustPut(t, s, "existing", []byte("v"))
		for _, k := range []string{atLimit, atLimitUTF8} {
			if err := s.Put(k, []byte("at limit")); err != nil {
				t.Errorf("Put with a %d-byte key: %v", len(k), err)
			}
		}
		if err := s.PutMany([]sqlstore.Entry{{Key: atLimit + "", Value: []byte("again")}}); err != nil {
			t.Errorf("PutMany with a %d-byte key: %v", len(atLimit), err)
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if got := getString(t, s, atLimit); got != "again" {
			t.Errorf("Get(2048-byte key) = %q", got)
		}
		if got := getString(t, s, atLimitUTF8); got != "at limit" {
			t.Errorf("Get(2048-byte UTF-8 key) = %q", got)
		}
		m, err := s.GetMany([]string{atLimit})
		if err != nil || string(m[atLimit]) != "again" {
			t.Errorf("GetMany(2048-byte key) = %q, %v", m[atLimit], err)
		}
		if es := listKeys(t, s, sqlstore.ListOptions{Start: atLimit, End: atLimit + "\x00"}); !slices.Equal(es, []string{atLimit}) {
			t.Errorf("List bounded by a 2048-byte key: %d keys", len(es))
		}
	})

	for _, k := range []string{past, pastUTF8} {
		ops := []struct {
			name string
			run  func(s *sqlstore.Store) error
		}{
			{"Put", func(s *sqlstore.Store) error { return s.Put(k, []byte("x")) }},
			{"Get", func(s *sqlstore.Store) error { _, _, err := s.Get(k); return err }},
			{"Delete", func(s *sqlstore.Store) error { _, err := s.Delete(k); return err }},
			{"GetMany", func(s *sqlstore.Store) error { _, err := s.GetMany([]string{"existing", k}); return err }},
			{"PutMany", func(s *sqlstore.Store) error {
				return s.PutMany([]sqlstore.Entry{{Key: "batch-ok", Value: []byte("x")}, {Key: k, Value: []byte("x")}})
			}},
			{"DeleteMany", func(s *sqlstore.Store) error { _, err := s.DeleteMany([]string{"existing", k}); return err }},
		}
		ts.event(func(s *sqlstore.Store) {
			for _, op := range ops {
				if err := op.run(s); !errors.Is(err, sqlstore.ErrKeyTooLarge) {
					t.Errorf("%s with a %d-byte key: err = %v, want ErrKeyTooLarge", op.name, len(k), err)
				}
			}
		})
	}
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		keys := listKeys(t, s, sqlstore.ListOptions{})
		want := []string{"existing", atLimit, atLimitUTF8}
		if !slices.Equal(keys, want) {
			t.Errorf("after rejected operations the keys are %d %.30q, want %d", len(keys), keys, len(want))
		}
	})
}

func TestKVValueSizeLimit(t *testing.T) {
	big := bytes.Repeat([]byte{0xab}, sqlstore.MaxValueSize)
	tooBig := bytes.Repeat([]byte{0xcd}, sqlstore.MaxValueSize+1)
	maxKey := strings.Repeat("k", sqlstore.MaxKeySize)
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		mustPut(t, s, "v", []byte("small"))
		if err := s.Put("big", big); err != nil {
			t.Errorf("Put of a %d-byte value: %v", len(big), err)
		}
		// The largest key with the largest value: both limits at once.
		if err := s.Put(maxKey, big); err != nil {
			t.Errorf("Put of a %d-byte key with a %d-byte value: %v", len(maxKey), len(big), err)
		}
		if err := s.PutMany([]sqlstore.Entry{{Key: "big2", Value: big}}); err != nil {
			t.Errorf("PutMany of a %d-byte value: %v", len(big), err)
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		for _, k := range []string{"big", maxKey, "big2"} {
			v, ok, err := s.Get(k)
			if err != nil || !ok || !bytes.Equal(v, big) {
				t.Errorf("Get(%.10q) = %d bytes, %v, %v; want the %d-byte value", k, len(v), ok, err, len(big))
			}
		}
		es, err := s.List(sqlstore.ListOptions{Prefix: "big"})
		if err != nil || len(es) != 2 || !bytes.Equal(es[0].Value, big) {
			t.Errorf("List of 2 MiB values: %d entries, %v", len(es), err)
		}
	})

	ts.event(func(s *sqlstore.Store) {
		if err := s.Put("v", tooBig); !errors.Is(err, sqlstore.ErrValueTooLarge) {
			t.Errorf("Put of a %d-byte value: err = %v, want ErrValueTooLarge", len(tooBig), err)
		}
		if err := s.Put("new", tooBig); !errors.Is(err, sqlstore.ErrValueTooLarge) {
			t.Errorf("Put of a %d-byte value: err = %v, want ErrValueTooLarge", len(tooBig), err)
		}
		err := s.PutMany([]sqlstore.Entry{{Key: "v", Value: []byte("changed")}, {Key: "new2", Value: tooBig}})
		if !errors.Is(err, sqlstore.ErrValueTooLarge) {
			t.Errorf("PutMany with a %d-byte value: err = %v, want ErrValueTooLarge", len(tooBig), err)
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if got := getString(t, s, "v"); got != "small" {
			t.Errorf("after rejected puts v = %.20q, want \"small\"", got)
		}
		for _, k := range []string{"new", "new2"} {
			if got := getString(t, s, k); got != "<missing>" {
				t.Errorf("a rejected put stored %q (%d bytes)", k, len(got))
			}
		}
	})
}

func TestKVBatchLimit(t *testing.T) {
	keys := func(n int, prefix string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%03d", prefix, i)
		}
		return out
	}
	entries := func(ks []string) []sqlstore.Entry {
		out := make([]sqlstore.Entry, len(ks))
		for i, k := range ks {
			out[i] = sqlstore.Entry{Key: k, Value: []byte("v" + k)}
		}
		return out
	}
	ts := newTestStore(t)
	atLimit := keys(sqlstore.MaxBatchKeys, "a")
	past := keys(sqlstore.MaxBatchKeys+1, "b")

	ts.event(func(s *sqlstore.Store) {
		if err := s.PutMany(entries(atLimit)); err != nil {
			t.Fatalf("PutMany of %d entries: %v", len(atLimit), err)
		}
		if err := s.PutMany(entries(past)); !errors.Is(err, sqlstore.ErrTooManyKeys) {
			t.Errorf("PutMany of %d entries: err = %v, want ErrTooManyKeys", len(past), err)
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		m, err := s.GetMany(atLimit)
		if err != nil || len(m) != len(atLimit) {
			t.Errorf("GetMany of %d keys = %d entries, %v", len(atLimit), len(m), err)
		}
		m, err = s.GetMany(append(slices.Clone(atLimit), "one more"))
		if !errors.Is(err, sqlstore.ErrTooManyKeys) {
			t.Errorf("GetMany of %d keys = %d entries, %v; want ErrTooManyKeys", len(atLimit)+1, len(m), err)
		}
		if got := listKeys(t, s, sqlstore.ListOptions{Prefix: "b"}); len(got) != 0 {
			t.Errorf("a rejected PutMany stored %d keys", len(got))
		}
		n, err := s.DeleteMany(append(slices.Clone(atLimit), "one more"))
		if !errors.Is(err, sqlstore.ErrTooManyKeys) || n != 0 {
			t.Errorf("DeleteMany of %d keys = %d, %v; want 0, ErrTooManyKeys", len(atLimit)+1, n, err)
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if got := listKeys(t, s, sqlstore.ListOptions{}); len(got) != len(atLimit) {
			t.Fatalf("a rejected DeleteMany deleted keys: %d left, want %d", len(got), len(atLimit))
		}
		n, err := s.DeleteMany(atLimit)
		if err != nil || n != len(atLimit) {
			t.Errorf("DeleteMany of %d keys = %d, %v", len(atLimit), n, err)
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if got := listKeys(t, s, sqlstore.ListOptions{}); len(got) != 0 {
			t.Errorf("%d keys left after DeleteMany of all of them", len(got))
		}
	})
}

// TestKVPutManyIsAtomic: a batch that fails part-way (here on SQLite's own
// limit check, after earlier entries were written) leaves nothing behind,
// while the event's earlier writes survive.
func TestKVPutManyIsAtomic(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		mustPut(t, s, "before", []byte("1"))
		err := s.PutMany([]sqlstore.Entry{{Key: "x", Value: []byte("1")}, {Key: strings.Repeat("k", sqlstore.MaxKeySize+1)}})
		if err == nil {
			t.Fatal("PutMany with an oversized key succeeded")
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if got := listKeys(t, s, sqlstore.ListOptions{}); !slices.Equal(got, []string{"before"}) {
			t.Errorf("keys = %q, want only \"before\"", got)
		}
	})
}

func TestDeleteAll(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		mustPut(t, s, "a", []byte("1"))
		mustPut(t, s, "b", []byte("2"))
		if err := s.SetMetaInt("alarm", 12345); err != nil {
			t.Fatal(err)
		}
		mustExec(t, s, `
			CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE);
			CREATE INDEX users_name ON users (name);
			CREATE TABLE "odd ""name""" (x);
			CREATE TABLE log (msg TEXT);
			CREATE VIEW names AS SELECT name FROM users;
			CREATE TRIGGER users_log AFTER INSERT ON users BEGIN INSERT INTO log VALUES (new.name); END;
			CREATE TRIGGER names_insert INSTEAD OF INSERT ON names BEGIN INSERT INTO users (name) VALUES (new.name); END;
			INSERT INTO names VALUES ('ann'), ('bob')`)
	})
	ts.reopen()
	var before []string
	ts.event(func(s *sqlstore.Store) {
		before = userSchema(t, s)
		if len(before) != 7 {
			t.Fatalf("schema before DeleteAll: %q", before)
		}
		if err := s.DeleteAll(); err != nil {
			t.Fatalf("DeleteAll: %v", err)
		}
		// The event sees its own DeleteAll.
		if got := listKeys(t, s, sqlstore.ListOptions{}); len(got) != 0 {
			t.Errorf("keys after DeleteAll in the same event: %q", got)
		}
	})
	check := func(when string) {
		ts.event(func(s *sqlstore.Store) {
			if got := listKeys(t, s, sqlstore.ListOptions{}); len(got) != 0 {
				t.Errorf("%s: keys = %q", when, got)
			}
			if got := userSchema(t, s); len(got) != 0 {
				t.Errorf("%s: schema objects left: %q", when, got)
			}
			if _, ok, err := s.MetaInt("alarm"); ok || err != nil {
				t.Errorf("%s: the alarm survived DeleteAll (err %v)", when, err)
			}
			// The names are free again and the KV API still works.
			mustExec(t, s, "CREATE TABLE users (a); DROP TABLE users")
			mustPut(t, s, "after", []byte("x"))
			if _, err := s.Delete("after"); err != nil {
				t.Error(err)
			}
		})
	}
	check("same store")
	ts.reopen()
	check("after reopen")
}

// TestDeleteAllWithForeignKeys: object databases enforce foreign keys, and
// DeleteAll must not trip over a parent table that is dropped before its
// children.
func TestDeleteAllWithForeignKeys(t *testing.T) {
	schemas := []struct {
		name, sql string
		violate   string // a statement the constraint refuses at once
	}{
		{"parent created first", `
			CREATE TABLE parent (id INTEGER PRIMARY KEY);
			CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent (id));
			INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1, 1)`,
			"INSERT INTO child VALUES (2, 99)"},
		{"deferred constraint", `
			CREATE TABLE parent (id INTEGER PRIMARY KEY);
			CREATE TABLE child (parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
			INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1)`,
			""},
		{"on delete restrict", `
			CREATE TABLE parent (id INTEGER PRIMARY KEY);
			CREATE TABLE child (parent INTEGER REFERENCES parent (id) ON DELETE RESTRICT);
			INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1)`,
			"DELETE FROM parent"},
		{"cycle", `
			CREATE TABLE a (id INTEGER PRIMARY KEY, b INTEGER REFERENCES b (id));
			CREATE TABLE b (id INTEGER PRIMARY KEY, a INTEGER REFERENCES a (id));
			INSERT INTO a VALUES (1, NULL); INSERT INTO b VALUES (1, 1); UPDATE a SET b = 1`,
			"INSERT INTO b VALUES (2, 99)"},
	}
	for _, tt := range schemas {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestStore(t)
			ts.event(func(s *sqlstore.Store) {
				mustExec(t, s, tt.sql)
				// Foreign keys are enforced.
				if tt.violate != "" {
					if _, err := s.Exec(tt.violate); err == nil {
						t.Errorf("%s: accepted, but it breaks a foreign key", tt.violate)
					}
				}
			})
			ts.reopen()
			ts.event(func(s *sqlstore.Store) {
				if err := s.DeleteAll(); err != nil {
					t.Fatalf("DeleteAll: %v", err)
				}
				mustPut(t, s, "after", []byte("x"))
			})
			ts.reopen()
			ts.event(func(s *sqlstore.Store) {
				if got := userSchema(t, s); len(got) != 0 {
					t.Errorf("schema objects left: %q", got)
				}
				// Foreign keys are still enforced after DeleteAll.
				mustExec(t, s, "CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE c (p REFERENCES p (id))")
				if _, err := s.Exec("INSERT INTO c VALUES (5)"); err == nil {
					t.Error("foreign keys are no longer enforced after DeleteAll")
				}
			})
		})
	}
}

func TestDeleteAllIsUndoneWithItsEvent(t *testing.T) {
	ts := newTestStore(t)
	ts.event(func(s *sqlstore.Store) {
		mustPut(t, s, "a", []byte("1"))
		mustExec(t, s, "CREATE TABLE t (x); INSERT INTO t VALUES (1)")
		if err := s.SetMetaInt("alarm", 7); err != nil {
			t.Fatal(err)
		}
	})
	ts.failedEvent(func(s *sqlstore.Store) {
		if err := s.DeleteAll(); err != nil {
			t.Fatal(err)
		}
	})
	ts.reopen()
	ts.event(func(s *sqlstore.Store) {
		if got := getString(t, s, "a"); got != "1" {
			t.Errorf("a = %q after an undone DeleteAll", got)
		}
		if n := queryInt(t, s, "SELECT count(*) FROM t"); n != 1 {
			t.Errorf("t has %d rows after an undone DeleteAll", n)
		}
		if v, ok, err := s.MetaInt("alarm"); v != 7 || !ok || err != nil {
			t.Errorf("alarm = %d, %v, %v after an undone DeleteAll", v, ok, err)
		}
	})
}
