// Package simtest starts simulated fleets for tests on address ranges no
// other test binary holds: tests of several packages run at once (go test
// runs packages in parallel), so a fixed range collides sooner or later.
// It exists apart from package sim so that sim itself does not import
// package testing.
package simtest

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/lightsout/lightsout/internal/sim"
)

var seq atomic.Uint32

// Start starts cfg and closes it when the test ends. As root, every BMC
// gets its own loopback address on port 623 in 127.<subnet>.0.0/16: the
// first in a block of the /16 picked by the process ID and a sequence, a
// range some other test binary holds (EADDRINUSE) moving on to the next
// block. Otherwise the BMCs take consecutive ports on 127.0.0.1 from a
// base picked the same way. subnet keeps a package's fleets apart from
// the fixed ranges of the simulator's own defaults (127.1, 127.9).
func Start(t testing.TB, cfg sim.Config, subnet byte) *sim.Fleet {
	t.Helper()
	n := cfg.Count + len(cfg.Enclosures) + 1
	blocks := max(1, (n+253)/254) // third octets a fleet spans (.0 and .255 skipped)
	var last error
	for attempt := 0; attempt < 20; attempt++ {
		k := (os.Getpid() + int(seq.Add(1))*7) % max(1, 250/blocks)
		c := cfg
		if os.Geteuid() == 0 {
			c.BaseAddr = fmt.Sprintf("127.%d.%d.1", subnet, k*blocks)
			c.BasePort = 0
		} else {
			c.BaseAddr = "127.0.0.1"
			c.BasePort = 20000 + (k*n)%(40000-n)
		}
		f, err := sim.New(c)
		if err == nil {
			t.Cleanup(func() { f.Close() })
			return f
		}
		last = err
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	t.Fatalf("simulator: %v", last)
	return nil
}
