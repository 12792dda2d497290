package torture

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests run the real `durable serve`, built once per test binary.
var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// durableBinary builds cmd/durable (with -race if DURABLE_TORTURE_RACE is
// set) and returns its path.
func durableBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "durable-torture-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "durable")
		args := []string{"build", "-o", binPath}
		if os.Getenv("DURABLE_TORTURE_RACE") != "" {
			args = append(args, "-race")
		}
		args = append(args, "github.com/durableobjects/durable/cmd/durable")
		cmd := exec.Command("go", args...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// server is a `durable serve` child process listening on a loopback port.
type server struct {
	t    testing.TB
	cmd  *exec.Cmd
	Dir  string
	Addr string
	URL  string
	logs *logWriter
	done chan struct{} // closed when the process has exited
	err  error         // its exit status, once done
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startServer starts `durable serve` on dir with a free port and waits
// until it listens. The server is SIGKILLed when the test ends unless it
// was stopped before.
func startServer(t testing.TB, dir string, args ...string) *server {
	t.Helper()
	s, err := tryStartServer(t, dir, args...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// startServerWith starts the server through a wrapper command (which must
// exec it), such as prlimit.
func startServerWith(t testing.TB, dir string, wrapper []string, args ...string) *server {
	t.Helper()
	s, err := tryStartServerWith(t, dir, wrapper, args...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func tryStartServer(t testing.TB, dir string, args ...string) (*server, error) {
	return tryStartServerWith(t, dir, nil, args...)
}

func tryStartServerWith(t testing.TB, dir string, wrapper []string, args ...string) (*server, error) {
	bin := durableBinary(t)
	s := &server{t: t, Dir: dir, logs: newLogWriter(), done: make(chan struct{})}
	argv := append(append(wrapper, bin, "serve", "--addr", "127.0.0.1:0", "--data", dir), args...)
	s.cmd = exec.Command(argv[0], argv[1:]...)
	s.cmd.Stdout = io.Discard
	s.cmd.Stderr = s.logs
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("server log (last lines):\n%s", s.logs.tail(40))
		}
	})
	deadline := time.After(30 * time.Second)
	for {
		ch := s.logs.changed()
		if m := listeningRE.FindStringSubmatch(s.logs.String()); m != nil {
			s.Addr = m[1]
			s.URL = "http://" + s.Addr
			return s, nil
		}
		select {
		case <-ch:
		case <-s.done:
			return nil, fmt.Errorf("server exited before listening (%v):\n%s", s.err, s.logs.String())
		case <-deadline:
			s.kill()
			return nil, fmt.Errorf("server did not listen within 30 s:\n%s", s.logs.String())
		}
	}
}

// kill SIGKILLs the server and waits for it to be gone.
func (s *server) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// stop sends SIGTERM and waits for the server to exit; it must exit 0.
func (s *server) stop() {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		s.kill()
		s.t.Fatal("server did not exit within 60 s of SIGTERM")
	}
	if s.err != nil {
		s.t.Fatalf("server exited with %v after SIGTERM:\n%s", s.err, s.logs.tail(40))
	}
}

// logWriter collects a process's stderr and signals each write.
type logWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	ch  chan struct{} // closed and replaced on every write
}

func newLogWriter() *logWriter { return &logWriter{ch: make(chan struct{})} }

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	close(w.ch)
	w.ch = make(chan struct{})
	return len(p), nil
}

func (w *logWriter) changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

func (w *logWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func (w *logWriter) tail(n int) string {
	lines := strings.Split(strings.TrimRight(w.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// reply is an HTTP answer.
type reply struct {
	Status int
	Header http.Header
	Body   []byte
}

// errorCode returns the code of an api.md error body, or "".
func (r *reply) errorCode() string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

func (r *reply) decode(v any) error {
	if err := json.Unmarshal(r.Body, v); err != nil {
		return fmt.Errorf("status %d: bad JSON %q: %v", r.Status, r.Body, err)
	}
	return nil
}

// call sends a request with a JSON body (nil for none) and reads the whole
// answer.
func call(ctx context.Context, c *http.Client, method, url string, body any) (*reply, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &reply{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// newClient returns an HTTP client for up to conns concurrent requests.
func newClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			DisableCompression:  true,
		},
	}
}

// mustCall is call for test code that expects an answer.
func mustCall(t testing.TB, c *http.Client, method, url string, body any) *reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := call(ctx, c, method, url, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}
