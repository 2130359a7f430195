// Package smallfs gives tests a small file system of their own (a tmpfs of
// a few KiB or MiB) to fill up: disk-full behaviour with real ENOSPC errors
// from the kernel, not simulated ones. It needs root (or CAP_SYS_ADMIN), as
// the project's machines and CI have; without it the test is skipped and
// says why.
package smallfs

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// Mount mounts a tmpfs of size bytes on a new directory and unmounts it when
// the test ends.
func Mount(t testing.TB, size int64) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("smallfs: mounting a tmpfs needs root")
	}
	dir := filepath.Join(t.TempDir(), "smallfs")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.FormatInt(size, 10), "smallfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("smallfs: cannot mount a tmpfs here: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("smallfs: umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// Fill writes a file into dir until the file system is full and returns
// its path: removing it gives the space back.
func Fill(t testing.TB, dir string) string {
	t.Helper()
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			return name
		}
	}
}
