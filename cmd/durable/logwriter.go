package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Buffered logging. The server writes an access log line per request; one
// write(2) each was 4 % of its CPU serving session reads
// (docs/benchmarks.md). Lines are buffered and written out every
// logFlushInterval, when logBufferSize is reached, at once for records at
// Warn and above, and on close. A process killed with SIGKILL loses at most
// the last logFlushInterval of Info lines.
const (
	logFlushInterval = 100 * time.Millisecond
	logBufferSize    = 64 << 10
)

// logWriter is an io.Writer that buffers what it is given for w.
type logWriter struct {
	w        io.Writer
	mu       sync.Mutex
	buf      []byte
	closed   bool
	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

func newLogWriter(w io.Writer) *logWriter {
	lw := &logWriter{w: w, buf: make([]byte, 0, logBufferSize), stop: make(chan struct{}), done: make(chan struct{})}
	go lw.loop()
	return lw
}

func (lw *logWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if len(lw.buf)+len(p) > logBufferSize {
		lw.flushLocked()
	}
	if lw.closed || len(p) > logBufferSize {
		return lw.w.Write(p)
	}
	lw.buf = append(lw.buf, p...)
	return len(p), nil
}

// Flush writes out what is buffered.
func (lw *logWriter) Flush() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.flushLocked()
}

func (lw *logWriter) flushLocked() {
	if len(lw.buf) > 0 {
		lw.w.Write(lw.buf) // a log that cannot be written has nowhere to say so
		lw.buf = lw.buf[:0]
	}
}

func (lw *logWriter) loop() {
	defer close(lw.done)
	t := time.NewTicker(logFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			lw.Flush()
		case <-lw.stop:
			return
		}
	}
}

// Close stops the flushing goroutine and writes out what is buffered.
// Later writes go through unbuffered. Closing again does nothing.
func (lw *logWriter) Close() {
	lw.stopOnce.Do(func() { close(lw.stop) })
	<-lw.done
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.flushLocked()
	lw.closed = true
}

// flushingHandler writes out the buffer after every record at Warn and
// above, so problems are seen (and survive a crash) at once.
type flushingHandler struct {
	slog.Handler
	w *logWriter
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.w.Flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.w}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.w}
}
