// Package progress prints the benchmarks' progress lines on stderr, each
// stamped with the time of day ("15:04:05 bench: …"), one at a time from
// any goroutine. The reports go to stdout; progress never does.
package progress

import (
	"fmt"
	"os"
	"sync"
	"time"
)

var mu sync.Mutex

// Logf prints one progress line.
func Logf(format string, args ...any) {
	mu.Lock()
	defer mu.Unlock()
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
