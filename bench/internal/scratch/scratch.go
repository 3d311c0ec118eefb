// Package scratch holds a benchmark's scratch directory — built binaries,
// inventories, passwords, logs, databases — made fresh under $TMPDIR and
// removed at the end unless the user asked to keep it.
package scratch

import (
	"os"

	"github.com/lightsout/lightsout/bench/internal/progress"
)

// New makes a fresh scratch directory whose name starts with prefix.
func New(prefix string) (string, error) {
	return os.MkdirTemp("", prefix)
}

// Remove removes dir and everything in it, or with keep says where it
// was kept. An empty dir (none made yet) is left alone.
func Remove(dir string, keep bool) {
	if dir == "" {
		return
	}
	if keep {
		progress.Logf("scratch directory kept: %s", dir)
		return
	}
	_ = os.RemoveAll(dir)
}
