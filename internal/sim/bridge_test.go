package sim

import "testing"

// FuzzSendMessage: the enclosure manager's reading of Send Message request
// data never panics, and what it accepts carries both IPMB checksums.
func FuzzSendMessage(f *testing.F) {
	f.Add([]byte{0x40, 0x84, 0x18, 0x64, 0x20, 0x04, 0x01, 0xdb})
	f.Add([]byte{0x00, 0x82, 0x00, 0x7e, 0x20, 0x08, 0x01, 0xd7})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, cc := parseSendMessage(b)
		if cc != ccOK {
			return
		}
		if len(b) < 8 || b[0]&0x0f != 0 || ipmbChecksum(b[1:3]) != b[3] || len(r.data) != len(b)-8 {
			t.Fatalf("accepted % x as %+v", b, r)
		}
	})
}

func TestParseSendMessage(t *testing.T) {
	// ipmitool -b 0 -t 0x84 raw 6 1, as its Send Message carries it.
	req := []byte{0x40, 0x84, 0x18, 0x64, 0x20, 0x04, 0x01, 0xdb}
	r, cc := parseSendMessage(req)
	if cc != ccOK || r.target != 0x84 || r.netFn != 0x06 || r.rqSA != 0x20 || r.rqSeq != 1 || r.cmd != 0x01 || len(r.data) != 0 {
		t.Fatalf("%+v %#x", r, cc)
	}
	for _, bad := range [][]byte{req[:7], {0x41, 0x84, 0x18, 0x64, 0x20, 0x04, 0x01, 0xdb}, {0x40, 0x84, 0x18, 0x65, 0x20, 0x04, 0x01, 0xdb}, {0x40, 0x84, 0x18, 0x64, 0x20, 0x04, 0x01, 0xdc}} {
		if _, cc := parseSendMessage(bad); cc == ccOK {
			t.Errorf("% x accepted", bad)
		}
	}
}
