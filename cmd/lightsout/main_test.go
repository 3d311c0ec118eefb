package main

import (
	"os"
	"testing"
)

// TestMain keeps `lightsout check`'s cache (--cache-dir's default,
// $XDG_CACHE_HOME/lightsout) out of the user's home: one fresh directory
// for the test binary.
func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "lightsout-cache-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", d)
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}
