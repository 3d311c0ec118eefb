package monitor

import (
	"testing"
	"unsafe"
)

// TestChannelSize keeps a channel within the 640-byte allocation size
// class: at 100,000 channels each 64 bytes over a class boundary is
// 6.4 MB of live heap (twice that in RSS at the server's GOGC).
func TestChannelSize(t *testing.T) {
	if n := unsafe.Sizeof(channel{}); n > 640 {
		t.Errorf("a channel is %d bytes, over the 640-byte size class", n)
	} else {
		t.Logf("a channel is %d bytes", n)
	}
}
