package ipmi

import (
	"context"
	"errors"
	"fmt"
)

// Standard IPMI bridging: a request to a controller behind the BMC — a
// blade's BMC on an enclosure manager's IPMB, an ATCA board's IPMC behind
// its shelf manager — wrapped in Send Message (App 0x34) with response
// tracking (IPMI 2.0 §6.12.x, table 22-11), as `ipmitool -b CHANNEL -t
// ADDR` sends it. The bridged controller's answer comes back either inside
// the Send Message response (some BMCs) or, as OpenIPMI's ipmi_sim and most
// BMCs do, as a second message of the session: the IPMB response frame
// itself, from the target's address.

// Bridge names a controller behind the BMC: its IPMB slave address (8-bit
// form, e.g. 0x82) on one of the BMC's IPMB channels (0: the primary IPMB).
type Bridge struct {
	Channel byte `json:"channel"`
	Target  byte `json:"target"`
}

func (b Bridge) String() string {
	return fmt.Sprintf("IPMB address %#02x on channel %d", b.Target, b.Channel)
}

// BridgeError is a Send Message the BMC did not carry out: Code is its
// completion code. Bus-level codes (0x80–0x83) say the IPMB transfer
// failed; others (0xC1 not supported, 0xCC invalid channel, 0xD4
// insufficient privilege) that the BMC refused this request — neither says
// anything about the account, which logged in.
type BridgeError struct {
	Bridge Bridge
	Code   byte
}

func (e *BridgeError) Error() string {
	return fmt.Sprintf("ipmi: send message to %s: completion code %#02x (%s)", e.Bridge, e.Code, bridgeCodeText(e.Code))
}

// Reason says what the completion code means.
func (e *BridgeError) Reason() string { return bridgeCodeText(e.Code) }

// NAK reports whether no controller acknowledged the target address on the
// bus (0x83): the bus works, nothing answers at that address.
func (e *BridgeError) NAK() bool { return e.Code == 0x83 }

// Bus reports whether the IPMB transfer itself failed (0x81 lost
// arbitration, 0x82 bus error): the path, not the controller.
func (e *BridgeError) Bus() bool { return e.Code == 0x81 || e.Code == 0x82 }

// Refused reports whether the BMC refused to bridge the request at all.
func (e *BridgeError) Refused() bool { return !e.NAK() && !e.Bus() && e.Code != 0x80 }

func bridgeCodeText(c byte) string {
	switch c {
	case 0x80:
		return "invalid session handle"
	case 0x81:
		return "lost arbitration on the IPMB"
	case 0x82:
		return "bus error on the IPMB"
	case 0x83:
		return "NAK on write: no controller acknowledged the address"
	}
	return ccText(c)
}

// ErrBridgedNoAnswer: the BMC accepted the Send Message, and the bridged
// controller's answer never came back within the request's time.
var ErrBridgedNoAnswer = errors.New("ipmi: the bridged controller did not answer")

// Bridged sends one request to the controller at br through this session's
// BMC and returns the controller's response data (after its completion
// code). A non-zero completion code from the controller is a
// *CompletionError; one from the BMC's Send Message a *BridgeError; an
// accepted request whose answer never came, ErrBridgedNoAnswer (wrapped).
func (s *Session) Bridged(ctx context.Context, br Bridge, netFn, cmd byte, data []byte) ([]byte, error) {
	if s.state != sessActive {
		return nil, ErrClosed
	}
	outerSeq := s.nextSeq()
	innerSeq := randomTag() & 0x3f
	inner := buildIPMB(br.Target, netFn, cmd, innerSeq, data)
	msg := buildRequest(0x06, 0x34, outerSeq, append([]byte{0x40 | br.Channel&0x0f}, inner...))
	var out []byte
	var cc byte
	var bridgeCC byte
	accepted := false
	err := s.exchangeIn(ctx, StageCommand, msg, func(m []byte, r response) (bool, error) {
		switch {
		case m[3] == br.Target && r.cmd == cmd && r.netFn == netFn|1 && (r.rqSeq == innerSeq || accepted):
			// The bridged controller's answer, as a message of its own.
			// A BMC may put its own sequence number on the IPMB and not
			// restore ours (ipmi_sim does): once it has accepted the Send
			// Message, the target, netFn and command identify the answer
			// (one request in flight per BMC).
			cc, out = r.cc, append([]byte(nil), r.data...)
			return true, nil
		case m[3] == bmcSlaveAddr && r.rqSeq == outerSeq && r.cmd == 0x34 && r.netFn == 0x07:
			if r.cc != 0 {
				bridgeCC = r.cc
				return true, nil
			}
			if len(r.data) == 0 {
				accepted = true // the answer follows as its own message
				return false, nil
			}
			br, err := parseBridgedReply(r.data, br.Target, netFn, cmd, innerSeq)
			if err != nil {
				s.e.c.malformed.Add(1)
				return false, errBadReply
			}
			cc, out = br.cc, br.data
			return true, nil
		}
		s.e.c.stale.Add(1)
		return false, nil
	})
	if err != nil {
		if accepted && errors.Is(err, ErrNoResponse) {
			return nil, fmt.Errorf("%w (%s, netfn %#02x cmd %#02x): %w", ErrBridgedNoAnswer, br, netFn, cmd, err)
		}
		return nil, err
	}
	if bridgeCC != 0 {
		return nil, &BridgeError{Bridge: br, Code: bridgeCC}
	}
	if cc != 0 {
		return out, &CompletionError{NetFn: netFn, Cmd: cmd, Code: cc}
	}
	return out, nil
}

// buildIPMB is an IPMB request frame from the BMC (0x20, LUN 0) to target,
// as Send Message carries it.
func buildIPMB(target, netFn, cmd, rqSeq byte, data []byte) []byte {
	m := make([]byte, 7+len(data))
	m[0] = target
	m[1] = netFn << 2
	m[2] = ipmiChecksum(m[0:2])
	m[3] = bmcSlaveAddr
	m[4] = rqSeq << 2
	m[5] = cmd
	copy(m[6:], data)
	m[len(m)-1] = ipmiChecksum(m[3 : len(m)-1])
	return m
}

// parseBridgedReply reads the IPMB response frame a BMC embeds in its Send
// Message response (rqSA, netFn/LUN, checksum, rsSA, rqSeq/LUN, cmd, cc,
// data, checksum) and checks it answers the request sent to target.
func parseBridgedReply(b []byte, target, netFn, cmd, rqSeq byte) (response, error) {
	r, err := parseResponse(b)
	if err != nil {
		return r, err
	}
	if b[3] != target || r.netFn != netFn|1 || r.cmd != cmd || r.rqSeq != rqSeq {
		return r, malformed("bridged reply from %#02x netfn %#02x cmd %#02x seq %d answers another request", b[3], r.netFn, r.cmd, r.rqSeq)
	}
	r.data = append([]byte(nil), r.data...)
	return r, nil
}

// BridgedDevice is what a bridged Get Device ID says of a controller.
type BridgedDevice struct {
	DeviceID
	// Chassis: the controller is a chassis device (Get Device ID's
	// additional device support, bit 7), so it answers chassis commands
	// (Get Chassis Status, Chassis Control, Chassis Identify).
	Chassis bool `json:"chassis"`
}

func parseBridgedDevice(b []byte) (BridgedDevice, error) {
	d, err := parseDeviceID(b)
	if err != nil {
		return BridgedDevice{}, err
	}
	return BridgedDevice{DeviceID: d, Chassis: b[5]&0x80 != 0}, nil
}

// BridgedDeviceID runs Get Device ID on the controller at br: whether it is
// alive behind the BMC, and what it is.
func (s *Session) BridgedDeviceID(ctx context.Context, br Bridge) (BridgedDevice, error) {
	b, err := s.Bridged(ctx, br, 0x06, 0x01, nil)
	if err != nil {
		return BridgedDevice{}, err
	}
	return parseBridgedDevice(b)
}

// BridgedChassisStatus runs Get Chassis Status on the controller at br
// (only a chassis device answers it; see BridgedDevice.Chassis).
func (s *Session) BridgedChassisStatus(ctx context.Context, br Bridge) (ChassisStatus, error) {
	b, err := s.Bridged(ctx, br, 0x00, 0x01, nil)
	if err != nil {
		return ChassisStatus{}, err
	}
	return parseChassisStatus(b)
}

// BridgedIdentify turns the chassis identify lamp of the controller at br
// on until turned off (on) or off (Chassis Identify, force on / interval 0).
func (s *Session) BridgedIdentify(ctx context.Context, br Bridge, on bool) error {
	data := []byte{0}
	if on {
		data = []byte{0, 0x01}
	}
	_, err := s.Bridged(ctx, br, 0x00, 0x04, data)
	return err
}

// PICMG FRU LED commands (PICMG 3.0 §3.2.5.6; NetFn group extension 0x2C,
// first byte the PICMG identifier 0x00): an ATCA shelf manager drives a
// board's LEDs through its IPMC — the lamp test of a blade behind it.
const (
	netFnPICMG       = 0x2c
	picmgID          = 0x00
	cmdSetFRULED     = 0x07
	cmdGetFRULED     = 0x08
	ledFunctionOn    = 0xff
	ledFunctionLocal = 0xfc // restore local control
)

// LEDState is Get FRU LED State's answer: who controls the LED and
// whether it is lit.
type LEDState struct {
	Local    bool `json:"local"`    // local control available
	Override bool `json:"override"` // override state in force
	LampTest bool `json:"lamp_test"`
	// Lit: the LED is on (or blinking) in the state in force.
	Lit bool `json:"lit"`
}

func parseLEDState(b []byte) (LEDState, error) {
	var l LEDState
	if len(b) < 5 {
		return l, malformed("FRU LED state of %d bytes", len(b))
	}
	if b[0] != picmgID {
		return l, malformed("FRU LED state with PICMG identifier %#02x", b[0])
	}
	l.Local, l.Override, l.LampTest = b[1]&0x01 != 0, b[1]&0x02 != 0, b[1]&0x04 != 0
	fn := b[2] // local function
	if l.Override {
		if len(b) < 8 {
			return l, malformed("FRU LED state in override of %d bytes", len(b))
		}
		fn = b[5]
	}
	// 0x00 off; 0x01–0xFA blinking; 0xFF on; 0xFB–0xFE are not states.
	l.Lit = l.LampTest || fn == ledFunctionOn || fn >= 0x01 && fn <= 0xfa
	return l, nil
}

// FRULEDState reads LED led of FRU fru on the controller at br.
func (s *Session) FRULEDState(ctx context.Context, br Bridge, fru, led byte) (LEDState, error) {
	b, err := s.Bridged(ctx, br, netFnPICMG, cmdGetFRULED, []byte{picmgID, fru, led})
	if err != nil {
		return LEDState{}, err
	}
	return parseLEDState(b)
}

// SetFRULED overrides LED led of FRU fru on the controller at br to on, or
// gives it back to local control.
func (s *Session) SetFRULED(ctx context.Context, br Bridge, fru, led byte, on bool) error {
	fn := byte(ledFunctionLocal)
	if on {
		fn = ledFunctionOn
	}
	// color 0x0e: "do not change" (PICMG 3.0 table 3-28).
	_, err := s.Bridged(ctx, br, netFnPICMG, cmdSetFRULED, []byte{picmgID, fru, led, fn, 0x00, 0x0e})
	return err
}
