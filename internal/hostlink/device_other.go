//go:build !linux

package hostlink

import (
	"fmt"
	"os"
	"runtime"
)

// openDevice: the in-band path is implemented on Linux only.
func openDevice(path string) (Device, error) {
	return nil, fmt.Errorf("in-band not supported on %s: %w", runtime.GOOS, os.ErrNotExist)
}
