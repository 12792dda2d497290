package durable_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/durableobjects/durable"
)

// The crash tests run a writer in a child process (this test binary,
// re-executed), kill it with SIGKILL at a random moment, and check that
// every write it acknowledged is there when the data directory is opened
// again.

const childEnv = "DURABLE_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "writer":
		crashWriter(os.Getenv("DURABLE_TEST_DIR"), os.Getenv("DURABLE_TEST_ROUND"))
		os.Exit(0)
	case "alarm":
		crashAlarmSetter(os.Getenv("DURABLE_TEST_DIR"))
		os.Exit(0)
	case "lossy":
		lossyWriter(os.Getenv("DURABLE_TEST_DIR"), os.Getenv("DURABLE_TEST_SNAP"), os.Getenv("DURABLE_TEST_ROUND"))
		os.Exit(0)
	case "alarm-hang":
		hangInAlarm = true
		crashAlarmSetter(os.Getenv("DURABLE_TEST_DIR"))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashObject is the class the crash tests write through.
type crashObject struct{ st *durable.State }

func (o *crashObject) Set(ctx context.Context, p kv) error {
	return o.st.Storage().Put(p.Key, []byte(p.Value))
}

func (o *crashObject) Get(ctx context.Context, key string) (string, error) {
	v, _, err := o.st.Storage().Get(key)
	return string(v), err
}

func (o *crashObject) SetAlarmIn(ctx context.Context, d time.Duration) error {
	return o.st.Storage().SetAlarm(o.st.Now().Add(d))
}

// crashAlarms receives alarm runs in the parent process.
var crashAlarms = make(chan string, 10)

// hangInAlarm makes the child's alarm handler step outside the gate (so its
// first turn commits) and wait there to be killed.
var hangInAlarm bool

func (o *crashObject) Alarm(ctx context.Context, info durable.AlarmInfo) error {
	if hangInAlarm {
		o.st.Storage().Put("touched", []byte("1"))
		return o.st.OutsideGate(func() error {
			fmt.Println("alarm running")
			select {}
		})
	}
	crashAlarms <- o.st.ID().String()
	return nil
}

func openCrashRuntime(dir string) (*durable.Runtime, *durable.Namespace, error) {
	rt := durable.NewRuntime(dir)
	ns, err := rt.Register("crash", func(st *durable.State) any { return &crashObject{st: st} })
	if err != nil {
		return nil, nil, err
	}
	return rt, ns, rt.Open()
}

// crashWriter writes until killed, printing "ack <object> <key>" for every
// write acknowledged.
func crashWriter(dir, round string) {
	_, ns, err := openCrashRuntime(dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	writeUntilKilled(ns, round)
}

// checkAcked reopens dir and fails the test unless every acknowledged write
// is there.
func checkAcked(t *testing.T, dir string, acked map[[2]string]bool, what string) {
	t.Helper()
	rt, ns, err := openCrashRuntime(dir)
	if err != nil {
		t.Fatalf("%s: reopen: %v", what, err)
	}
	for k := range acked {
		got, err := durable.Call[string](context.Background(), ns.GetByName(k[0]), "Get", k[1])
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got != "v" {
			t.Fatalf("%s: acknowledged write %s/%s lost", what, k[0], k[1])
		}
	}
	if err := rt.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// startChild starts this test binary as a child in the given mode and
// returns it with a scanner over its output, after it printed "ready".
func startChild(t *testing.T, mode, dir string, env ...string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "DURABLE_TEST_DIR="+dir)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || sc.Text() != "ready" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child did not start: %q", sc.Text())
	}
	return cmd, sc
}

func TestAcknowledgedWritesSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: skipped in -short mode")
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	const rounds = 12
	total := 0
	for round := range rounds {
		cmd, sc := startChild(t, "writer", dir, fmt.Sprintf("DURABLE_TEST_ROUND=%d", round))
		wait := collectAcks(t, sc)
		time.Sleep(time.Duration(20+rng.IntN(300)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		acked := wait()

		checkAcked(t, dir, acked, fmt.Sprintf("round %d (seed %d), after SIGKILL", round, seed))
		total += len(acked)
		t.Logf("round %d: %d acknowledged writes, all present", round, len(acked))
	}
	if total < rounds {
		t.Fatalf("only %d writes acknowledged in %d rounds: the test proved little", total, rounds)
	}
}

// crashAlarmSetter sets an alarm 300 ms ahead, says so, and waits to be killed.
func crashAlarmSetter(dir string) {
	_, ns, err := openCrashRuntime(dir)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	_, err = durable.Call[struct{}](context.Background(), ns.GetByName("alarmed"), "SetAlarmIn", time.Hour)
	if err == nil {
		_, err = durable.Call[struct{}](context.Background(), ns.GetByName("alarmed"), "SetAlarmIn", 300*time.Millisecond)
	}
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("set", ns.IDFromName("alarmed").String())
	select {} // until SIGKILL
}

func TestAlarmSurvivesSIGKILL(t *testing.T) {
	dir := t.TempDir()
	cmd, sc := startChild(t, "alarm", dir)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "set ") {
		t.Fatalf("child: %q", sc.Text())
	}
	id := strings.TrimPrefix(sc.Text(), "set ")
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	expectAlarmAfterRestart(t, dir, id, "alarm set before SIGKILL did not fire after restart")
}

// expectAlarmAfterRestart reopens dir and waits for the alarm of object id.
func expectAlarmAfterRestart(t *testing.T, dir, id, failure string) {
	t.Helper()
	rt, _, err := openCrashRuntime(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())
	select {
	case got := <-crashAlarms:
		if got != id {
			t.Fatalf("alarm of %s fired, want %s", got, id)
		}
	case <-time.After(15 * time.Second):
		t.Fatal(failure)
	}
}

func TestAlarmInterruptedMidHandlerRunsAgain(t *testing.T) {
	dir := t.TempDir()
	cmd, sc := startChild(t, "alarm-hang", dir)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "set ") {
		t.Fatalf("child: %q", sc.Text())
	}
	id := strings.TrimPrefix(sc.Text(), "set ")
	if !sc.Scan() || sc.Text() != "alarm running" {
		t.Fatalf("child: %q", sc.Text())
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	expectAlarmAfterRestart(t, dir, id, "an alarm killed mid-handler was not delivered again after restart")
}
