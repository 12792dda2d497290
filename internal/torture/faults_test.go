package torture

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/durableobjects/durable/internal/fullfs"
)

// The fault tests break one object's storage (a read-only directory, a
// full disk, a corrupted file) and check that its requests answer 500
// internal with a log line naming the object, that other objects keep
// serving, and that nothing committed is lost.

const faultLimit = 1000

// checkKey runs a rate-limit check (limit faultLimit, one hour) on key.
func checkKey(t *testing.T, c *http.Client, s *server, key string) *reply {
	t.Helper()
	return mustCall(t, c, "POST", s.URL+"/v1/ratelimit/"+key+"/check", map[string]any{"limit": faultLimit, "window_ms": 3_600_000})
}

// wantCount checks key once more and fails unless the key had counted
// between lo and hi allowed requests before it.
func wantCount(t *testing.T, c *http.Client, s *server, key string, lo, hi int64) {
	t.Helper()
	r := checkKey(t, c, s, key)
	var b struct{ Remaining int64 }
	if r.Status != http.StatusOK || r.decode(&b) != nil {
		t.Fatalf("check %s: %d %s", key, r.Status, r.Body)
	}
	if used := faultLimit - b.Remaining - 1; used < lo || used > hi {
		t.Fatalf("key %s counts %d allowed requests, want %d..%d", key, used, lo, hi)
	}
}

// objectFiles returns the object database files of class in dir.
func objectFiles(t *testing.T, dir, class string) map[string]bool {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, class, "*", "*.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, f := range m {
		files[f] = true
	}
	return files
}

// keyObject makes the rate-limit key's object write n allowed checks and
// returns its database file, which must be new. avoid lists fan-out
// directories the file must not be in (the key is then renamed).
func keyObject(t *testing.T, c *http.Client, s *server, key string, n int, avoid ...string) (string, string) {
	t.Helper()
	for attempt := 0; attempt < 50; attempt++ {
		k := key
		if attempt > 0 {
			k = fmt.Sprintf("%s-%d", key, attempt)
		}
		before := objectFiles(t, s.Dir, "ratelimit")
		for range n {
			if r := checkKey(t, c, s, k); r.Status != http.StatusOK {
				t.Fatalf("check %s: %d %s", k, r.Status, r.Body)
			}
		}
		var created []string
		for f := range objectFiles(t, s.Dir, "ratelimit") {
			if !before[f] {
				created = append(created, f)
			}
		}
		if len(created) != 1 {
			t.Fatalf("checks of %s created files %q, want one", k, created)
		}
		clash := false
		for _, a := range avoid {
			clash = clash || filepath.Dir(created[0]) == a
		}
		if !clash {
			return k, created[0]
		}
	}
	t.Fatal("no key with a file outside the avoided directories")
	return "", ""
}

// objectID is the hex ID in an object database's file name.
func objectID(file string) string { return strings.TrimSuffix(filepath.Base(file), ".sqlite") }

// wantInternal checks that a request to the broken object answers 500
// internal with the api.md error body, and that the server logged a line
// naming the object.
func wantInternal(t *testing.T, s *server, r *reply, class, file string) {
	t.Helper()
	checkErrorBody(t, r, http.StatusInternalServerError, "internal")
	if bytes.Contains(r.Body, []byte(s.Dir)) || bytes.Contains(r.Body, []byte(".go")) {
		t.Fatalf("500 body names files: %s", r.Body)
	}
	id := objectID(file)
	line, ok := s.waitLog(10*time.Second, "class="+class, "id="+id)
	if !ok {
		t.Fatalf("no log line names the broken object (class=%s id=%s); log:\n%s", class, id, s.logs.tail(20))
	}
	t.Logf("log: %s", line)
}

func TestSecondServerRefusesLockedDataDir(t *testing.T) {
	dir := t.TempDir()
	first := startServer(t, dir)
	c := newClient(4, 30*time.Second)
	checkKey(t, c, first, "k")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, durableBinary(t), "serve", "--addr", "127.0.0.1:0", "--data", dir)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("second server on the same data directory: %v, want exit status 1; output:\n%s", err, out)
	}
	want := "durable serve: durable: data directory is in use by another process: " + dir
	if !strings.Contains(string(out), want) {
		t.Fatalf("second server said %q, want a line with %q", out, want)
	}
	if strings.Contains(string(out), "listening") {
		t.Fatalf("second server listened before refusing: %s", out)
	}
	t.Logf("second server: exit 1, %q", strings.TrimSpace(string(out)))

	// The first one is unharmed, and the directory is free once it stops.
	wantCount(t, c, first, "k", 1, 1)
	first.stop()
	again := startServer(t, dir)
	wantCount(t, c, again, "k", 2, 2)
	again.stop()
}

// mountOrSkip runs mount; if mounting is not permitted here, the test is
// skipped, loudly.
func mountOrSkip(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
		t.Skipf("SKIPPED, NOT TESTED: mount %s failed (%v: %s); this test needs root with CAP_SYS_ADMIN",
			strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

func unmount(t *testing.T, dir string) {
	t.Helper()
	if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
		t.Errorf("umount %s: %v: %s", dir, err, out)
	}
}

// readOnlyBind makes dir read-only by bind-mounting it on itself read-only
// (permissions do not stop root) and returns a function that undoes it.
func readOnlyBind(t *testing.T, dir string) (undo func()) {
	t.Helper()
	mountOrSkip(t, "--bind", dir, dir)
	if out, err := exec.Command("mount", "-o", "remount,bind,ro", dir).CombinedOutput(); err != nil {
		unmount(t, dir)
		t.Skipf("SKIPPED, NOT TESTED: read-only remount of %s failed (%v: %s)", dir, err, out)
	}
	done := false
	undo = func() {
		if !done {
			done = true
			unmount(t, dir)
		}
	}
	t.Cleanup(undo)
	return undo
}

func TestReadOnlyObjectDirectory(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	c := newClient(4, 30*time.Second)
	victim, file := keyObject(t, c, s, "victim", 3)
	other, _ := keyObject(t, c, s, "other", 3, filepath.Dir(file))
	s.stop()

	undo := readOnlyBind(t, filepath.Dir(file))
	s = startServer(t, dir)
	for range 2 {
		wantInternal(t, s, checkKey(t, c, s, victim), "ratelimit", file)
	}
	wantCount(t, c, s, other, 3, 3)

	// Writable again: the object reopens and lost nothing.
	undo()
	wantCount(t, c, s, victim, 3, 3)
	s.stop()
	s = startServer(t, dir)
	wantCount(t, c, s, victim, 4, 4)
	wantCount(t, c, s, other, 4, 4)
	s.stop()
}

func TestReadOnlyDataDirectoryRefusesToStart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	c := newClient(4, 30*time.Second)
	checkKey(t, c, s, "k")
	s.stop()

	undo := readOnlyBind(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, durableBinary(t), "serve", "--addr", "127.0.0.1:0", "--data", dir).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "read-only file system") {
		t.Fatalf("server on a read-only data directory: %v, want exit status 1 naming the read-only file system; output:\n%s", err, out)
	}
	t.Logf("server on a read-only data directory: exit 1, %q", strings.TrimSpace(string(out)))
	undo()
	s = startServer(t, dir)
	wantCount(t, c, s, "k", 1, 1)
	s.stop()
}

func TestFullDisk(t *testing.T) {
	mnt := fullfs.Mount(t, "12m")
	dir := filepath.Join(mnt, "data")
	s := startServer(t, dir)
	t.Cleanup(s.kill) // before the unmount
	c := newClient(4, 30*time.Second)
	victim, file := keyObject(t, c, s, "victim", 3)
	other, _ := keyObject(t, c, s, "other", 3)
	sess := mustCall(t, c, "POST", s.URL+"/v1/sessions", map[string]any{"user_id": "u", "data": map[string]any{"k": "v"}})
	var created struct{ ID string }
	if sess.Status != http.StatusCreated || sess.decode(&created) != nil {
		t.Fatalf("create session: %d %s", sess.Status, sess.Body)
	}

	fillerFile := fullfs.Fill(t, mnt)
	fillerFile.Close()
	filler := fillerFile.Name()
	// Writes need space they cannot get: 500, naming the object.
	failed := 0
	for range 20 {
		r := checkKey(t, c, s, victim)
		if r.Status == http.StatusOK {
			continue // a commit that fit in the WAL's free space
		}
		failed++
		checkErrorBody(t, r, http.StatusInternalServerError, "internal")
	}
	if failed == 0 {
		t.Fatal("no check failed on a full disk")
	}
	wantInternal(t, s, checkKey(t, c, s, victim), "ratelimit", file)
	// Reads keep working, on other objects too.
	if r := mustCall(t, c, "GET", s.URL+"/v1/sessions/"+created.ID, nil); r.Status != http.StatusOK {
		t.Fatalf("read a session on a full disk: %d %s", r.Status, r.Body)
	}
	if r := mustCall(t, c, "GET", s.URL+"/healthz", nil); r.Status != http.StatusOK {
		t.Fatalf("healthz on a full disk: %d %s", r.Status, r.Body)
	}
	t.Logf("full disk: %d of 21 writes to %s answered 500", failed+1, victim)

	// Space again: writes work, nothing committed was lost.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	wantCount(t, c, s, victim, 3, int64(3+20-failed))
	wantCount(t, c, s, other, 3, 3)
	s.stop()
	s = startServer(t, dir)
	wantCount(t, c, s, other, 4, 4)
	if r := mustCall(t, c, "GET", s.URL+"/v1/sessions/"+created.ID, nil); r.Status != http.StatusOK || !bytes.Contains(r.Body, []byte(`"k":"v"`)) {
		t.Fatalf("session after a full disk: %d %s", r.Status, r.Body)
	}
	s.stop()
}

// corrupt overwrites n bytes of file at off with garbage.
func corrupt(t *testing.T, file string, off int64, n int) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, n), off); err != nil {
		t.Fatal(err)
	}
}

func TestCorruptObjectDatabase(t *testing.T) {
	dir := t.TempDir()
	// Nothing is evicted before the clean stop: an evicted object keeps
	// its WAL, which would hold the pages corrupted below.
	s := startServer(t, dir, "--idle-timeout", "10m")
	c := newClient(4, 30*time.Second)
	header, headerFile := keyObject(t, c, s, "header", 3)
	pages, pagesFile := keyObject(t, c, s, "pages", 3)
	other, _ := keyObject(t, c, s, "other", 3)
	evicted, evictedFile := keyObject(t, c, s, "evicted", 3)
	s.stop()
	for _, f := range []string{headerFile, pagesFile} {
		if _, err := os.Stat(f + "-wal"); err == nil {
			t.Fatalf("%s has a WAL after a clean stop", f)
		}
	}
	corrupt(t, headerFile, 0, 100)    // not a database any more
	corrupt(t, pagesFile, 4096, 8192) // b-tree pages: corrupt

	s = startServer(t, dir, "--idle-timeout", "200ms")
	for range 2 {
		wantInternal(t, s, checkKey(t, c, s, header), "ratelimit", headerFile)
		wantInternal(t, s, checkKey(t, c, s, pages), "ratelimit", pagesFile)
	}
	wantCount(t, c, s, other, 3, 3)

	// An object corrupted while evicted from a running server.
	waitEvicted(t, c, s)
	corrupt(t, evictedFile, 4096, 8192)
	wantInternal(t, s, checkKey(t, c, s, evicted), "ratelimit", evictedFile)
	wantCount(t, c, s, other, 4, 4)
	if r := mustCall(t, c, "GET", s.URL+"/healthz", nil); r.Status != http.StatusOK {
		t.Fatalf("healthz: %d %s", r.Status, r.Body)
	}
	s.stop()
}

// waitEvicted waits until the server has no object in memory.
func waitEvicted(t *testing.T, c *http.Client, s *server) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		r := mustCall(t, c, "GET", s.URL+"/metrics", nil)
		if bytes.Contains(r.Body, []byte("\ndurable_objects_active 0\n")) {
			return
		}
		select {
		case <-deadline:
			t.Fatal("objects still active 30 s after the last request")
		case <-time.After(50 * time.Millisecond): // poll interval
		}
	}
}

// waitLog waits until the server's log has a line containing every one of
// subs, and returns it.
func (s *server) waitLog(timeout time.Duration, subs ...string) (string, bool) {
	deadline := time.After(timeout)
	for {
		ch := s.logs.changed()
		if line, ok := s.logs.find(subs...); ok {
			return line, true
		}
		select {
		case <-ch:
		case <-deadline:
			return "", false
		}
	}
}

func (w *logWriter) find(subs ...string) (string, bool) {
	sc := bufio.NewScanner(strings.NewReader(w.String()))
	sc.Buffer(nil, 1<<20)
lines:
	for sc.Scan() {
		for _, s := range subs {
			if !strings.Contains(sc.Text(), s) {
				continue lines
			}
		}
		return sc.Text(), true
	}
	return "", false
}

// checkErrorBody fails unless r is an api.md error answer with code.
func checkErrorBody(t testing.TB, r *reply, status int, code string) {
	t.Helper()
	if r.Status != status || r.errorCode() != code {
		t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, status, code)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error answer with Content-Type %q", ct)
	}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &e); err != nil || e.Error.Message == "" {
		t.Fatalf("error body %q is not {\"error\":{\"code\",\"message\"}}", r.Body)
	}
}
