package alarm

import (
	"encoding/binary"
	"log/slog"
	"testing"
	"time"

	"github.com/durableobjects/durable/internal/node"
)

// BenchmarkSet measures Set on distinct keys, as when many objects set
// their first alarm. The times only grow, so after the first scan no Set
// kicks the loop and nothing fires: the cost is the index write alone.
func BenchmarkSet(b *testing.B) {
	db, err := node.Open(b.TempDir(), false)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := Start(Config{
		DB:        db,
		Now:       func() time.Time { return time.UnixMilli(1_000) },
		AfterFunc: func(d time.Duration, f func()) func() bool { return func() bool { return true } },
		Fire:      func(k Key, at int64) {},
		Logger:    slog.New(slog.DiscardHandler),
	})
	defer s.Close()
	k := Key{NS: "bench"}
	b.ResetTimer()
	for i := range b.N {
		binary.LittleEndian.PutUint64(k.ID[:], uint64(i))
		if err := s.Set(k, 1_000_000_000+int64(i)); err != nil {
			b.Fatal(err)
		}
	}
}
