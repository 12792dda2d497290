package corebench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"

	"github.com/durableobjects/durable/internal/sqlstore"
)

// CreateResult is the creation scenario: every event goes to a name never
// used before, so it activates a new object whose one write creates its
// database file.
type CreateResult struct {
	Durable Throughput `json:"durable"` // Config.CreateCallers callers, runtime defaults
	Naive   Throughput `json:"naive"`   // one goroutine building databases the plain way
	Files   Throughput `json:"files"`   // one goroutine creating the two files only

	DurableVsNaive float64 `json:"durable_vs_naive"`
	DurableVsFiles float64 `json:"durable_vs_files"`
}

// Create runs the creation scenario.
func Create(ctx context.Context, cfg Config) (r *CreateResult, err error) {
	cfg = cfg.withDefaults()
	cfg.logf("create, %d callers", cfg.CreateCallers)
	dir, remove, err := cfg.scratch("create")
	if err != nil {
		return nil, err
	}
	defer remove()
	rts, err := openRuntimes([]string{filepath.Join(dir, "data")}, []Mode{Syncfs})
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, rts.close(cfg)) }()
	ns := rts.nss[0]
	var next atomic.Int64
	naive := filepath.Join(dir, "naive")
	if err := os.Mkdir(naive, 0o755); err != nil {
		return nil, err
	}
	template, err := sqlstore.NewTemplate(dir, "")
	if err != nil {
		return nil, err
	}
	files := filepath.Join(dir, "files")
	if err := os.Mkdir(files, 0o755); err != nil {
		return nil, err
	}
	var naiveNext, filesNext int
	tps, err := interleave(ctx, cfg, []trial{{
		mode: "durable", label: "new objects, runtime defaults", rt: rts.rts[0], callers: cfg.CreateCallers,
		call: func(ctx context.Context, _ int) error {
			return Put(ctx, ns.GetByName("new-"+strconv.FormatInt(next.Add(1), 10)))
		},
	}, {
		mode: "naive", label: "naive create: open, WAL, schema, insert (FULL), close", callers: 1,
		call: func(context.Context, int) error {
			naiveNext++
			return NaiveCreate(filepath.Join(naive, strconv.Itoa(naiveNext)+".sqlite"))
		},
	}, {
		mode: "files", label: "files only: database + WAL, no SQLite, no fsync", callers: 1,
		call: func(context.Context, int) error {
			filesNext++
			return CreateFiles(filepath.Join(files, strconv.Itoa(filesNext)+".sqlite"), template)
		},
	}})
	if err != nil {
		return nil, err
	}
	r = &CreateResult{Durable: tps[0], Naive: tps[1], Files: tps[2]}
	r.DurableVsNaive = ratioOf(r.Durable.PerSec, r.Naive.PerSec)
	r.DurableVsFiles = ratioOf(r.Durable.PerSec, r.Files.PerSec)
	return r, nil
}
