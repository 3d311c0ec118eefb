// Package poll is the tests' one bounded wait on a condition, for what
// synctest cannot reach (real UDP, TLS, processes, a database's
// background work): Until checks the condition on a short ticker until it
// holds, and fails the test, saying what it waited for, once the bound
// has passed. Every loop is bounded; nothing sleeps a fixed time.
package poll

import (
	"testing"
	"time"
)

// Every is how often a condition is checked again.
const Every = 5 * time.Millisecond

// Wait checks cond until it holds (true) or within has passed (false,
// after one last check).
func Wait(within time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	tick := time.NewTicker(Every)
	defer tick.Stop()
	bound := time.NewTimer(within)
	defer bound.Stop()
	for {
		select {
		case <-tick.C:
			if cond() {
				return true
			}
		case <-bound.C:
			return cond()
		}
	}
}

// Until is Wait that fails the test (t.Fatalf, so from the test's
// goroutine) when cond does not hold within the bound.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Wait(within, cond) {
		t.Fatalf("%s: not within %s", what, within)
	}
}
