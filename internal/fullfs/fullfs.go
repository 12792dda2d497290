// Package fullfs helps tests that need a full file system: a small tmpfs
// mounted for the test, and a file that fills it to the last byte.
package fullfs

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// Mount mounts a tmpfs of size (as mount takes it: "4m") on a temporary
// directory, unmounted when the test ends, and returns the directory. It
// skips the test when it cannot mount (that needs root with
// CAP_SYS_ADMIN). Whatever the test opens there must be closed before its
// cleanups run, or the unmount fails.
func Mount(t testing.TB, size string) string {
	t.Helper()
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("SKIPPED, NOT TESTED: mount tmpfs failed (%v: %s); this test needs root with CAP_SYS_ADMIN", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	return mnt
}

// Fill writes a file named "filler" in dir until the file system is full,
// down to its last byte, and returns it open: closing it is the caller's,
// and removing it frees the space.
func Fill(t testing.TB, dir string) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	// Big writes first; smaller ones use up the last pages and bytes.
	for _, n := range []int{64 << 10, 4096, 512, 1} {
		chunk := make([]byte, n)
		for {
			if _, err := f.Write(chunk); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					f.Close()
					t.Fatal(err)
				}
				break
			}
		}
	}
	return f
}
