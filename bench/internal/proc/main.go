package proc

import (
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lightsout/lightsout/bench/internal/progress"
)

// RunAndExit runs run, calls cleanup and exits with run's code. SIGINT or
// SIGTERM cuts it short: cleanup, then exit 130. cleanup may thus run
// while run still does and must be safe to call twice (sync.Once).
func RunAndExit(run func() int, cleanup func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		progress.Logf("%v: stopping", s)
		cleanup()
		os.Exit(130)
	}()
	code := run()
	cleanup()
	os.Exit(code)
}

// Shutdown kills every process group still in the table (SIGKILL) and
// gives them 200 ms to go; from now on whatever starts is killed at once.
func (t *Table) Shutdown() {
	if t.KillAll(syscall.SIGKILL) > 0 {
		time.Sleep(200 * time.Millisecond)
	}
}
