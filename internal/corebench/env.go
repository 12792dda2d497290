package corebench

import (
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Env describes where a run happened.
type Env struct {
	Dir        string        `json:"dir"`
	FS         string        `json:"fs"` // filesystem type of Dir
	CPUs       int           `json:"cpus"`
	GOMAXPROCS int           `json:"gomaxprocs"`
	OS         string        `json:"os"`
	Arch       string        `json:"arch"`
	Go         string        `json:"go"`
	Duration   time.Duration `json:"duration_ns"`
	Rounds     int           `json:"rounds"`
	Warmup     time.Duration `json:"warmup_ns"`
	// Fsync is the latency of a 4 KiB append + fdatasync in Dir at the
	// start: the disk's own limit (design.md measured ~70 µs here, idle).
	Fsync Latency `json:"fsync"`
	// LoadStart and LoadEnd are the 1-minute load averages when the run
	// started and ended: other work on the machine skews the figures.
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end"`
}

func environment(cfg Config) Env {
	return Env{
		Dir:        cfg.Dir,
		FS:         FSType(cfg.Dir),
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		OS:         runtime.GOOS,
		Arch:       runtime.GOARCH,
		Go:         runtime.Version(),
		Duration:   cfg.Duration,
		Rounds:     cfg.Rounds,
		Warmup:     cfg.Warmup,
		LoadStart:  LoadAverage(),
		Fsync:      probeFsync(cfg.Dir, 200),
	}
}

// probeFsync times n appends of 4 KiB, each followed by fdatasync, to a
// scratch file in dir. It returns zero if the file cannot be made.
func probeFsync(dir string, n int) Latency {
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		return Latency{}
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	ds := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		if _, err := f.Write(buf); err != nil {
			return Latency{}
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			return Latency{}
		}
		ds = append(ds, time.Since(t))
	}
	l := Summarize(ds)
	l.Mode, l.Label = "fsync", "4 KiB append + fdatasync"
	return l
}

// LoadAverage returns the 1-minute load average, or "?" where unknown.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "?"
}

// Filesystem magic numbers of statfs(2).
var fsNames = map[int64]string{
	0xEF53:     "ext4",
	0x58465342: "xfs",
	0x9123683E: "btrfs",
	0x01021994: "tmpfs",
	0x794C7630: "overlayfs",
	0x2FC12FC1: "zfs",
	0xF2F52010: "f2fs",
	0x6969:     "nfs",
}

// FSType names the type of the filesystem holding path, or "unknown".
func FSType(path string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return "unknown"
	}
	if name, ok := fsNames[int64(st.Type)]; ok {
		return name
	}
	return "unknown"
}

// SameDevice reports whether two paths are on the same filesystem.
func SameDevice(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	if errA != nil || errB != nil {
		return false
	}
	da, okA := sa.Sys().(*syscall.Stat_t)
	db, okB := sb.Sys().(*syscall.Stat_t)
	return okA && okB && da.Dev == db.Dev
}
