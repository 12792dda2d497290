// Package torture holds the end-to-end reliability tests of `durable
// serve`; it has no code of its own. The tests build the real binary, run
// it as a child process on loopback, and:
//
//   - torture_test.go: drive a mixed concurrent load (rate-limit checks,
//     locks, sessions, scheduled events with a local webhook), SIGKILL the
//     server at random moments, restart it on the same data directory, and
//     check what came back against a model of what was acknowledged,
//     including a linearizability check of every lock's history with
//     porcupine (the model is lockmodel_test.go, itself tested on broken
//     histories). DURABLE_TORTURE_SEED replays a run's random choices;
//     DURABLE_TORTURE_ROUNDS sets the number of kills.
//   - faults_test.go: a second server on a locked data directory, a
//     read-only object directory, a full disk and a corrupted object
//     database; the broken object answers 500 and is named in the log while
//     the others keep serving and lose nothing.
//   - overload_test.go: one object flooded far past its queue answers 503
//     overloaded with Retry-After, quickly, while other objects keep
//     serving and the server's memory stays bounded.
//   - limits_test.go: header, body and WebSocket message limits, slow
//     headers (slowloris) and slow bodies cut off by the server's
//     timeouts, and running out of file descriptors.
//
// The fault tests mount a tmpfs and read-only bind mounts: they need root
// (with CAP_SYS_ADMIN) and skip, saying so, without it.
package torture
