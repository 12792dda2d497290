// Package alarm is the node-level alarm index and the timer loop that wakes
// objects, evicted or not, when their alarms come due.
//
// The index maps each object to a time at or before its alarm. An object's
// own database is the truth; an index entry that is early (the alarm was
// moved later or deleted) only causes a wake-up that finds nothing to do and
// corrects the entry. So the index is written before the object commits
// (moving an entry earlier) and corrected after the object's commit is
// durable (moving it later or deleting it), and a crash between the two
// never loses an alarm.
package alarm

import (
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/durableobjects/durable/internal/node"
	"github.com/ncruces/go-sqlite3"
)

// Key names an object.
type Key struct {
	NS string
	ID [32]byte
}

// maxArmDrift is how far the clock may move while the timer is armed
// before the loop scans again.
const maxArmDrift = 50 * time.Millisecond

// MaxInflight bounds how many alarms are being delivered at once.
const MaxInflight = 1024

// Config wires a scheduler to its runtime.
type Config struct {
	// Classes, if not empty, are the namespaces whose alarms fire here;
	// entries of other classes (left by another binary on the same data
	// directory) stay in the index untouched and never block these.
	Classes   []string
	DB        *node.DB
	Now       func() time.Time
	AfterFunc func(d time.Duration, f func()) (stop func() bool)
	// Fire delivers an alarm; it must not block for long. The runtime
	// calls Done when the delivery is over.
	Fire   func(k Key, at int64)
	Logger *slog.Logger
}

// Scheduler runs the timer loop.
type Scheduler struct {
	cfg Config

	mu       sync.Mutex
	inflight map[Key]int64
	// setDuring holds, for keys being delivered, the earliest time Set
	// was given meanwhile: Done corrects the entry to the run's outcome,
	// which does not know of alarms set by events after the run.
	setDuring map[Key]int64
	timerAt   int64 // when the timer fires; 0 if none
	stop      func() bool
	closed    bool
	kick      chan struct{}
	done      chan struct{}
}

// Start starts the loop; alarms already due fire at once.
func Start(cfg Config) *Scheduler {
	s := &Scheduler{cfg: cfg, inflight: map[Key]int64{}, setDuring: map[Key]int64{},
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	go s.loop()
	s.Kick()
	return s
}

// Kick makes the loop look for due alarms now.
func (s *Scheduler) Kick() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Close stops the loop. Deliveries in flight are the runtime's to finish.
func (s *Scheduler) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if s.stop != nil {
		s.stop()
	}
	s.mu.Unlock()
	s.Kick()
	<-s.done
}

// Set records that k has an alarm at at (ms since the epoch). The entry
// only moves earlier: a later time is left for Done to correct once the
// object's commit is durable.
func (s *Scheduler) Set(k Key, at int64) error {
	// Record a Set during k's delivery before writing the entry, so that
	// either Done sees the record, or Done's correction is over before
	// this write (Done corrects the entry, then takes the record).
	s.mu.Lock()
	if _, busy := s.inflight[k]; busy {
		if cur, ok := s.setDuring[k]; !ok || at < cur {
			s.setDuring[k] = at
		}
	}
	s.mu.Unlock()
	return s.upsert(k, at)
}

// The statements run for single entries, on every Set and Done; the node
// database prepares each once and keeps it (DoStmt).
const (
	upsertSQL = `INSERT INTO alarms (ns, id, at) VALUES (?, ?, ?)
		ON CONFLICT (ns, id) DO UPDATE SET at = min(at, excluded.at)`
	moveSQL   = "UPDATE alarms SET at = ?4 WHERE ns = ?1 AND id = ?2 AND at = ?3"
	deleteSQL = "DELETE FROM alarms WHERE ns = ?1 AND id = ?2 AND at = ?3"
	lookupSQL = "SELECT at FROM alarms WHERE ns = ? AND id = ?"
)

// upsert moves k's entry to at or earlier.
func (s *Scheduler) upsert(k Key, at int64) error {
	err := s.cfg.DB.DoStmt(upsertSQL, func(st *sqlite3.Stmt) error {
		st.BindText(1, k.NS)
		st.BindBlob(2, k.ID[:])
		st.BindInt64(3, at)
		return st.Exec()
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	earlier := s.timerAt == 0 || at < s.timerAt
	s.mu.Unlock()
	if earlier {
		s.Kick()
	}
	return nil
}

// Done ends the delivery of k's alarm that the index had at firedAt: the
// entry moves to next (the object's alarm after the run, 0 for none),
// unless it was changed meanwhile, and then to anything Set meanwhile.
func (s *Scheduler) Done(k Key, firedAt, next int64) {
	err := s.Correct(k, firedAt, next)
	s.mu.Lock()
	if s.inflight[k] == firedAt {
		delete(s.inflight, k)
	}
	later, setDuring := s.setDuring[k]
	delete(s.setDuring, k)
	s.mu.Unlock()
	if setDuring {
		err = errors.Join(err, s.upsert(k, later))
	}
	if err != nil {
		s.cfg.Logger.Error("alarm index update failed", "ns", k.NS, "err", err)
	}
	s.Kick()
}

// Correct moves k's entry from was to next (0 deletes it) if it is still at was.
func (s *Scheduler) Correct(k Key, was, next int64) error {
	if was == next {
		return nil
	}
	q := moveSQL
	if next == 0 {
		q = deleteSQL
	}
	return s.cfg.DB.DoStmt(q, func(st *sqlite3.Stmt) error {
		st.BindText(1, k.NS)
		st.BindBlob(2, k.ID[:])
		st.BindInt64(3, was)
		if next != 0 {
			st.BindInt64(4, next)
		}
		return st.Exec()
	})
}

// Lookup returns k's index entry, or 0.
func (s *Scheduler) Lookup(k Key) (int64, error) {
	var at int64
	err := s.cfg.DB.DoStmt(lookupSQL, func(st *sqlite3.Stmt) error {
		st.BindText(1, k.NS)
		st.BindBlob(2, k.ID[:])
		if st.Step() {
			at = st.ColumnInt64(0)
		}
		return st.Err()
	})
	return at, err
}

func (s *Scheduler) loop() {
	defer close(s.done)
	for range s.kick {
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed {
			return
		}
		s.scan()
	}
}

type due struct {
	k  Key
	at int64
}

// classFilter is the SQL condition restricting a scan to Classes.
func (s *Scheduler) classFilter() string {
	if len(s.cfg.Classes) == 0 {
		return ""
	}
	quoted := make([]string, len(s.cfg.Classes))
	for i, c := range s.cfg.Classes {
		quoted[i] = sqlite3.Quote(c)
	}
	return "AND ns IN (" + strings.Join(quoted, ", ") + ")"
}

// scan fires what is due and sets the timer for what comes next.
func (s *Scheduler) scan() {
	now := s.cfg.Now().UnixMilli()
	var fire []due
	var next int64
	err := s.cfg.DB.Do(func(c *sqlite3.Conn) error {
		st, _, err := c.Prepare("SELECT ns, id, at FROM alarms WHERE at <= ? " + s.classFilter() + " ORDER BY at LIMIT ?")
		if err != nil {
			return err
		}
		defer st.Close()
		st.BindInt64(1, now)
		st.BindInt64(2, MaxInflight)
		for st.Step() {
			var d due
			d.k.NS = st.ColumnText(0)
			copy(d.k.ID[:], st.ColumnRawBlob(1))
			d.at = st.ColumnInt64(2)
			fire = append(fire, d)
		}
		if err := st.Err(); err != nil {
			return err
		}
		nx, _, err := c.Prepare("SELECT min(at) FROM alarms WHERE at > ? " + s.classFilter())
		if err != nil {
			return err
		}
		defer nx.Close()
		nx.BindInt64(1, now)
		if nx.Step() {
			next = nx.ColumnInt64(0)
		}
		return nx.Err()
	})
	if err != nil {
		s.cfg.Logger.Error("alarm scan failed", "err", err)
		next = now + 1000 // try again soon
	}
	var start []due
	s.mu.Lock()
	for _, d := range fire {
		if len(s.inflight) >= MaxInflight {
			break // Done kicks the loop when room frees up
		}
		if _, busy := s.inflight[d.k]; busy {
			continue
		}
		s.inflight[d.k] = d.at
		start = append(start, d)
	}
	if s.stop != nil {
		s.stop()
		s.stop = nil
	}
	s.timerAt = next
	if next != 0 && !s.closed {
		// Measure the delay from the clock as it is now, not as it was at
		// the start of the scan. If the clock jumped while the timer was
		// armed (a test's clock can), the timer may be late: look again.
		// Real clocks move a little meanwhile; that is not worth a scan.
		armedAt := s.cfg.Now()
		s.stop = s.cfg.AfterFunc(time.Duration(next-armedAt.UnixMilli())*time.Millisecond, s.Kick)
		if s.cfg.Now().Sub(armedAt) > maxArmDrift {
			s.Kick()
		}
	}
	s.mu.Unlock()
	for _, d := range start {
		s.cfg.Fire(d.k, d.at)
	}
}
