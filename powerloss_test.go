package durable_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/durableobjects/durable"
)

// The power-loss test models a machine that loses power: everything not
// made durable by a completed sync is gone. The child's durability barrier
// does not sync; instead each round copies the whole data directory to a
// snapshot, which is exactly what a completed syncfs guarantees to survive.
// After SIGKILL the parent replaces the data directory with the last
// snapshot — the disk as power loss would leave it — and checks that every
// acknowledged write is there. A runtime that acknowledged a write before
// the sync covering it would fail this test; the page cache (which a plain
// SIGKILL test cannot get rid of) does not help here.

// lossyWriter runs in the child: crashWriter with a snapshotting barrier.
func lossyWriter(dir, snap, round string) {
	rt, ns, err := openCrashRuntime(dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	durable.SetSyncFunc(rt, func() error { return snapshotDir(dir, snap) })
	writeUntilKilled(ns, round)
}

// snapshotDir copies dir into a new generation under snaps: it is copied
// to a temporary directory, then renamed to the next generation's name, so
// a generation directory exists only once complete (the child may be killed
// in the middle of a copy). Older generations are removed.
func snapshotDir(dir, snaps string) error {
	tmp := filepath.Join(snaps, "tmp")
	os.RemoveAll(tmp)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // a WAL removed meanwhile
			}
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		target := filepath.Join(tmp, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return copyFile(p, target)
	})
	if err != nil {
		return err
	}
	last, _ := latestSnapshot(snaps)
	next := filepath.Join(snaps, fmt.Sprintf("gen-%08d", snapshotGen(last)+1))
	if err := os.Rename(tmp, next); err != nil {
		return err
	}
	if last != "" {
		os.RemoveAll(last)
	}
	return nil
}

// latestSnapshot returns the newest complete generation under snaps.
func latestSnapshot(snaps string) (string, bool) {
	gens, _ := filepath.Glob(filepath.Join(snaps, "gen-*"))
	if len(gens) == 0 {
		return "", false
	}
	slices.Sort(gens)
	return gens[len(gens)-1], true
}

func snapshotGen(path string) int {
	var n int
	fmt.Sscanf(filepath.Base(path), "gen-%d", &n)
	return n
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// writeUntilKilled is the write loop of the crash children: 8 writers over
// 5 objects, printing "ack <object> <key>" for each acknowledged write.
func writeUntilKilled(ns *durable.Namespace, round string) {
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	fmt.Fprintln(out, "ready")
	out.Flush()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				obj := fmt.Sprintf("o%d", (g+i)%5)
				key := fmt.Sprintf("r%s-g%d-%d", round, g, i)
				_, err := durable.Call[struct{}](context.Background(), ns.GetByName(obj), "Set", kv{key, "v"})
				mu.Lock()
				if err != nil {
					fmt.Fprintln(out, "error", err)
				} else {
					fmt.Fprintln(out, "ack", obj, key)
				}
				out.Flush()
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestAcknowledgedWritesSurvivePowerLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped in -short mode")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	base := t.TempDir()
	dir, snap := filepath.Join(base, "data"), filepath.Join(base, "snapshot")
	all := map[[2]string]bool{} // every write acknowledged in any round
	for round := range 10 {
		// What is on disk now is durable: the snapshot power loss returns to
		// if no sync completes in this round.
		if _, err := os.Stat(dir); err == nil {
			if err := snapshotDir(dir, snap); err != nil {
				t.Fatal(err)
			}
		}
		cmd, sc := startChild(t, "lossy", dir, "DURABLE_TEST_SNAP="+snap, fmt.Sprintf("DURABLE_TEST_ROUND=%d", round))
		wait := collectAcks(t, sc)
		time.Sleep(time.Duration(30+rng.IntN(200)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		keys := wait()
		for k := range keys {
			all[k] = true
		}

		// Power loss: the disk holds only what the last completed sync covered.
		last, ok := latestSnapshot(snap)
		if !ok {
			if len(keys) > 0 {
				t.Fatalf("round %d: %d writes acknowledged but no sync ever completed", round, len(keys))
			}
			continue
		}
		os.RemoveAll(dir)
		if err := os.Rename(last, dir); err != nil {
			t.Fatal(err)
		}
		checkAcked(t, dir, all, fmt.Sprintf("round %d (seed %d), after power loss", round, seed))
		t.Logf("round %d: %d writes acknowledged, %d in total, all survived", round, len(keys), len(all))
	}
	if len(all) < 10 {
		t.Fatalf("only %d writes acknowledged: the test proved little", len(all))
	}
}

// collectAcks reads a child's "ack <object> <key>" lines in the
// background; the function it returns waits for the child's output to end
// (call it after the child is dead) and returns the acknowledged writes.
// Errors after the kill are expected: a write in flight fails.
func collectAcks(t *testing.T, sc *bufio.Scanner) func() map[[2]string]bool {
	acked := map[[2]string]bool{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 3 && f[0] == "ack" {
				acked[[2]string{f[1], f[2]}] = true
			} else if !strings.HasPrefix(sc.Text(), "error") {
				t.Errorf("child: %s", sc.Text())
			}
		}
	}()
	return func() map[[2]string]bool {
		<-done
		return acked
	}
}
