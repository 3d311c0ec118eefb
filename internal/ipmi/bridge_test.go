package ipmi

import (
	"errors"
	"strings"
	"testing"
)

// FuzzBridgeReplies feeds arbitrary bytes to the decoders of bridged
// answers: the IPMB response a BMC embeds in its Send Message response,
// a bridged Get Device ID, and PICMG Get FRU LED State.
func FuzzBridgeReplies(f *testing.F) {
	f.Add([]byte{0x20, 0x1c, 0xc4, 0x82, 0x04, 0x01, 0x00, 0x01, 0x01, 0x02, 0x03, 0x02, 0x1f, 0x91, 0x12, 0x00, 0x03, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x9c})
	f.Add([]byte{0x01, 0x01, 0x02, 0x03, 0x02, 0x9f, 0x91, 0x12, 0x00, 0x03, 0x0f})
	f.Add([]byte{0x00, 0x03, 0x00, 0x00, 0x01, 0xff, 0x00, 0x01})
	f.Add([]byte{0x00, 0x01, 0x00, 0x00, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if r, err := parseBridgedReply(b, 0x82, 0x06, 0x01, 1); err == nil && (len(r.data) > len(b) || r.cmd != 0x01) {
			t.Fatalf("bridged reply %+v from %d bytes", r, len(b))
		}
		if d, err := parseBridgedDevice(b); err == nil && d.Chassis != (b[5]&0x80 != 0) {
			t.Fatalf("device %+v", d)
		}
		if l, err := parseLEDState(b); err == nil && l.Override && len(b) < 8 {
			t.Fatalf("override state from %d bytes", len(b))
		}
	})
}

func TestBridgeDecoders(t *testing.T) {
	// ipmi_sim's answer to a bridged Get Device ID, as its own message
	// (rqSA 0x20, from 0x82, its own sequence number 1).
	frame := []byte{0x20, 0x1c, 0xc4, 0x82, 0x04, 0x01, 0x00, 0x01, 0x01, 0x02, 0x03, 0x02, 0x1f, 0x91, 0x12, 0x00, 0x03, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x9c}
	r, err := parseBridgedReply(frame, 0x82, 0x06, 0x01, 1)
	if err != nil || r.cc != 0 || len(r.data) != 15 {
		t.Fatalf("embedded reply %+v %v", r, err)
	}
	if _, err := parseBridgedReply(frame, 0x84, 0x06, 0x01, 1); !errors.Is(err, ErrMalformed) {
		t.Errorf("a reply from another address: %v", err)
	}
	d, err := parseBridgedDevice(r.data)
	if err != nil || d.DeviceID.DeviceID != 1 || d.Chassis || d.ProductID != 0xf03 {
		t.Errorf("device %+v %v", d, err)
	}
	if d, _ := parseBridgedDevice([]byte{0x01, 0x01, 0x02, 0x03, 0x02, 0x9f, 0x91, 0x12, 0x00, 0x03, 0x0f}); !d.Chassis {
		t.Errorf("a chassis device: %+v", d)
	}
	for _, c := range []struct {
		b    []byte
		want LEDState
	}{
		{[]byte{0x00, 0x01, 0x00, 0x00, 0x01}, LEDState{Local: true}},
		{[]byte{0x00, 0x03, 0x00, 0x00, 0x01, 0xff, 0x00, 0x01}, LEDState{Local: true, Override: true, Lit: true}},
		{[]byte{0x00, 0x03, 0xff, 0x00, 0x01, 0x00, 0x00, 0x01}, LEDState{Local: true, Override: true}},
		{[]byte{0x00, 0x01, 0x32, 0x32, 0x01}, LEDState{Local: true, Lit: true}}, // blinking
		{[]byte{0x00, 0x05, 0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00}, LEDState{Local: true, LampTest: true, Lit: true}},
	} {
		if l, err := parseLEDState(c.b); err != nil || l != c.want {
			t.Errorf("% x: %+v %v, want %+v", c.b, l, err, c.want)
		}
	}
	for _, bad := range [][]byte{{0x00, 0x01}, {0x01, 0x01, 0x00, 0x00, 0x01}, {0x00, 0x03, 0x00, 0x00, 0x01}} {
		if _, err := parseLEDState(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("% x: %v", bad, err)
		}
	}
	be := &BridgeError{Bridge: Bridge{Target: 0x82}, Code: 0xd4}
	if !be.Refused() || be.NAK() || be.Bus() {
		t.Errorf("0xD4 is a refusal: %+v", be)
	}
}

func TestIPMBRule(t *testing.T) {
	for _, c := range []struct {
		rule string
		slot int
		want byte
	}{{"", 1, 0x82}, {"", 3, 0x86}, {"0x82+2", 2, 0x84}, {"0xa0 + 4", 3, 0xa8}, {"0x82,0x84,0x8a", 3, 0x8a}, {"130", 1, 0x82}} {
		r, err := ParseIPMBRule(c.rule)
		if err != nil {
			t.Fatalf("%q: %v", c.rule, err)
		}
		if a, err := r.Address(c.slot); err != nil || a != c.want {
			t.Errorf("%q slot %d: %#x %v, want %#x", c.rule, c.slot, a, err, c.want)
		}
	}
	for _, bad := range []string{"0x83+2", "0x82+0", "0x82+3", "x", "0x82,,0x84", "0x100"} {
		if _, err := ParseIPMBRule(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	r, _ := ParseIPMBRule("0x82,0x84")
	if _, err := r.Address(3); err == nil || !strings.Contains(err.Error(), "lists 2 addresses") {
		t.Errorf("slot past the list: %v", err)
	}
	r, _ = ParseIPMBRule("0xf0+8")
	if _, err := r.Address(3); err == nil {
		t.Errorf("past 0xfe accepted")
	}
}
