// Package corebench measures the core runtime: durable writes on one object
// and across many objects, object creation and cold activation, each next to
// a baseline measured in the same run (a bare SQLite loop, one fsync per
// commit, plain file creation), so results read as ratios rather than
// absolute numbers that only hold on one machine.
//
// The configurations of a scenario are open side by side and take turns
// under load, in Config.Rounds windows each (A B C A B C …), so load from
// other processes that comes and goes hits all of them alike; the spread of
// the windows is reported with each figure.
//
// The `durable bench` command runs the suite (Run) and prints a table
// (WriteText); bench_test.go in the module root drives the same building
// blocks (Open, Put, Bare …) from testing.B at a smaller scale.
//
// Scenarios, as in docs/benchmarks.md:
//
//   - one: 64 callers write one object — group commit through the
//     durability barrier, versus one fsync'd commit per event, versus a bare
//     SQLite upsert loop with no mailbox (the ceiling).
//   - many: 256 callers write 1,000 objects — barrier with syncfs, barrier
//     with fdatasync, and per-object fsync.
//   - create: callers write to fresh names, so every event creates an
//     object; against building databases naively and against creating the
//     files alone.
//   - cold: the first call to an existing object after the runtime was
//     reopened, versus opening and reading the file with bare SQLite.
package corebench
