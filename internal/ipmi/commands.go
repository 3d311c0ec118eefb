package ipmi

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// parseAuthCaps decodes the response data (after the completion code).
func parseAuthCaps(b []byte) (AuthCaps, error) {
	var a AuthCaps
	if len(b) < 8 {
		return a, malformed("auth capabilities of %d bytes", len(b))
	}
	a.Channel = b[0]
	a.AuthNone = b[1]&0x01 != 0
	a.AuthMD2 = b[1]&0x02 != 0
	a.AuthMD5 = b[1]&0x04 != 0
	a.AuthStraight = b[1]&0x10 != 0
	a.AuthOEM = b[1]&0x20 != 0
	ext := b[1]&0x80 != 0
	a.KGNonZero = b[2]&0x20 != 0
	a.PerMsgAuthOff = b[2]&0x10 != 0
	a.UserLevelAuthOf = b[2]&0x08 != 0
	a.NonNullUsers = b[2]&0x04 != 0
	a.NullUsers = b[2]&0x02 != 0
	a.Anonymous = b[2]&0x01 != 0
	if ext {
		a.IPMI15 = b[3]&0x01 != 0
		a.IPMI20 = b[3]&0x02 != 0
	} else {
		a.IPMI15 = true
	}
	a.OEMID = uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16
	return a, nil
}

// AuthCaps asks Get Channel Authentication Capabilities (session-less,
// IPMI 1.5 framing as every console sends it) for priv on the current
// channel, with the IPMI 2.0 extended data requested.
func (e *Engine) AuthCaps(ctx context.Context, addr netip.AddrPort, priv Privilege) (AuthCaps, time.Duration, error) {
	if priv == 0 {
		priv = PrivilegeAdministrator
	}
	var caps AuthCaps
	var cc byte
	rtt, err := e.sessionless(ctx, addr, StageAuthCaps, 0x06, 0x38, []byte{0x8e, byte(priv)}, func(c byte, data []byte) error {
		if cc = c; cc != 0 {
			return nil
		}
		var err error
		if caps, err = parseAuthCaps(data); err != nil {
			e.c.malformed.Add(1)
			return &StageError{Stage: StageAuthCaps, Err: err}
		}
		return nil
	})
	if err != nil {
		return caps, rtt, err
	}
	if cc != 0 {
		// A BMC that rejects the IPMI 2.0 extension bit speaks only 1.5.
		return caps, rtt, &StageError{Stage: StageAuthCaps, Err: fmt.Errorf("%w: completion code %#02x to the IPMI 2.0 request", ErrNoIPMI20, cc)}
	}
	if !caps.IPMI20 {
		return caps, rtt, &StageError{Stage: StageAuthCaps, Err: ErrNoIPMI20}
	}
	return caps, rtt, nil
}

// DeviceID is the answer to Get Device ID.
type DeviceID struct {
	DeviceID        byte   `json:"device_id"`
	DeviceRevision  byte   `json:"device_revision"`
	FirmwareMajor   byte   `json:"firmware_major"`
	FirmwareMinor   byte   `json:"firmware_minor"` // decoded from BCD
	IPMIVersion     string `json:"ipmi_version"`
	ManufacturerID  uint32 `json:"manufacturer_id"`
	ProductID       uint16 `json:"product_id"`
	AuxFirmware     []byte `json:"aux_firmware,omitempty"`
	DeviceAvailable bool   `json:"device_available"`
}

// Firmware renders the firmware revision the way vendors print it (2.45).
func (d DeviceID) Firmware() string { return fmt.Sprintf("%d.%02d", d.FirmwareMajor, d.FirmwareMinor) }

func bcd(b byte) byte { return (b>>4)*10 + b&0x0f }

func parseDeviceID(b []byte) (DeviceID, error) {
	var d DeviceID
	if len(b) < 11 {
		return d, malformed("device ID of %d bytes", len(b))
	}
	d.DeviceID, d.DeviceRevision = b[0], b[1]&0x0f
	d.DeviceAvailable = b[2]&0x80 == 0
	d.FirmwareMajor = b[2] & 0x7f
	d.FirmwareMinor = bcd(b[3])
	d.IPMIVersion = fmt.Sprintf("%d.%d", b[4]&0x0f, b[4]>>4)
	d.ManufacturerID = uint32(b[6]) | uint32(b[7])<<8 | uint32(b[8]&0x0f)<<16
	d.ProductID = binary.LittleEndian.Uint16(b[9:11])
	if len(b) >= 15 {
		d.AuxFirmware = append([]byte(nil), b[11:15]...)
	}
	return d, nil
}

// GetDeviceID runs Get Device ID (App 0x01).
func (s *Session) GetDeviceID(ctx context.Context) (DeviceID, error) {
	b, err := s.Do(ctx, 0x06, 0x01, nil)
	if err != nil {
		return DeviceID{}, err
	}
	return parseDeviceID(b)
}

// GetSystemGUID runs Get System GUID (App 0x37) and returns the raw bytes.
func (s *Session) GetSystemGUID(ctx context.Context) ([16]byte, error) {
	var g [16]byte
	b, err := s.Do(ctx, 0x06, 0x37, nil)
	if err != nil {
		return g, err
	}
	if len(b) < 16 {
		return g, malformed("system GUID of %d bytes", len(b))
	}
	copy(g[:], b)
	return g, nil
}

func parseChassisStatus(b []byte) (ChassisStatus, error) {
	var c ChassisStatus
	if len(b) < 3 {
		return c, malformed("chassis status of %d bytes", len(b))
	}
	c.PowerOn = b[0]&0x01 != 0
	c.PowerOverload = b[0]&0x02 != 0
	c.PowerFault = b[0]&0x08 != 0
	c.ControlFault = b[0]&0x10 != 0
	c.RestorePolicy = [4]string{"always-off", "previous", "always-on", "unknown"}[b[0]>>5&0x03]
	c.Intrusion = b[2]&0x01 != 0
	if b[2]&0x40 != 0 {
		c.Identify = [4]string{"off", "timed", "on", "reserved"}[b[2]>>4&0x03]
	}
	return c, nil
}

// ChassisStatus runs Get Chassis Status (Chassis 0x01).
func (s *Session) ChassisStatus(ctx context.Context) (ChassisStatus, error) {
	b, err := s.Do(ctx, 0x00, 0x01, nil)
	if err != nil {
		return ChassisStatus{}, err
	}
	return parseChassisStatus(b)
}

// ChassisControl actions (IPMI 2.0 table 28-4).
type ChassisAction byte

const (
	PowerOff   ChassisAction = 0x00
	PowerOn    ChassisAction = 0x01
	PowerCycle ChassisAction = 0x02
	HardReset  ChassisAction = 0x03
	SoftOff    ChassisAction = 0x05 // ACPI soft shutdown
)

// ChassisControl runs Chassis Control; the session needs Operator
// privilege (see SetPrivilege).
func (s *Session) ChassisControl(ctx context.Context, a ChassisAction) error {
	_, err := s.Do(ctx, 0x00, 0x02, []byte{byte(a)})
	return err
}

// Identify turns the chassis identify LED on for seconds (0 = off), or on
// until turned off when force is set.
func (s *Session) Identify(ctx context.Context, seconds byte, force bool) error {
	data := []byte{seconds}
	if force {
		data = append(data, 0x01)
	}
	_, err := s.Do(ctx, 0x00, 0x04, data)
	return err
}

// SetPrivilege raises the session to p (Set Session Privilege Level).
func (s *Session) SetPrivilege(ctx context.Context, p Privilege) error {
	_, err := s.Do(ctx, 0x06, 0x3b, []byte{byte(p)})
	return err
}

// Contact is a first contact's answer: Get Channel Authentication
// Capabilities, and the presence ping sent with it.
type Contact struct {
	// Caps are the capabilities (zero unless Code is 0); CapsRTT > 0
	// says the BMC answered the request.
	Caps    AuthCaps
	CapsRTT time.Duration
	// Code is the completion code of the answer (non-zero: the IPMI 2.0
	// request was refused, as an IPMI 1.5 BMC may).
	Code byte
	// Pong: the presence ping was answered, after PingRTT.
	Pong    bool
	PingRTT time.Duration
}

// Contact asks Get Channel Authentication Capabilities for priv and, with
// ping, the RMCP presence ping after it — never both at once: one request
// of ours in flight per BMC (docs/benchmarks.md, issue 19). The
// capabilities go first, since they are what the check needs. Answered,
// the ping follows with a short wait — a few of the capabilities' round
// trips, at least 20 ms, never long enough to be sent again — so a BMC
// that does not answer pings (ipmiping: Intel M50FCP, Windmill, pyghmi)
// costs that wait once, not a ping timeout. Unanswered (timed out), the
// ping still goes, within half a retransmission timeout: a pong then says
// the BMC's network side is alive while its IPMI service is not (the
// error comes with Pong set). Capabilities without IPMI 2.0 are returned
// with an ErrNoIPMI20 error, as AuthCaps does: they may be bogus
// (authcap).
func (e *Engine) Contact(ctx context.Context, addr netip.AddrPort, priv Privilege, ping bool) (Contact, error) {
	var c Contact
	p, err := e.peer(addr)
	if err != nil {
		return c, err
	}
	if priv == 0 {
		priv = PrivilegeAdministrator
	}
	rqSeq := randomTag() & 0x3f
	capsPkt := buildV15(buildRequest(0x06, 0x38, rqSeq, []byte{0x8e, byte(priv)}))
	var (
		capsSent time.Time
		got      bool
		cc       byte
	)
	_, _, err = e.exchange(ctx, p, StageAuthCaps, func() []byte {
		capsSent = time.Now()
		return capsPkt
	}, func(ev event) (bool, error) {
		if ev.d.class != classIPMI || ev.d.sessionID != 0 {
			return false, nil
		}
		if ev.d.authType == authTypeRMCPP && ev.d.payloadType != payloadIPMI {
			return false, nil
		}
		r, err := parseResponse(ev.d.payload)
		if err != nil {
			e.c.malformed.Add(1)
			return false, errBadReply
		}
		if r.cmd != 0x38 || r.rqSeq != rqSeq {
			return false, nil
		}
		got, cc = true, r.cc
		c.CapsRTT = ev.at.Sub(capsSent)
		if cc == 0 {
			if c.Caps, err = parseAuthCaps(r.data); err != nil {
				e.c.malformed.Add(1)
				return true, &StageError{Stage: StageAuthCaps, Err: err}
			}
		}
		return true, nil
	})
	if ping && ctx.Err() == nil && (got || errors.Is(err, ErrNoResponse)) {
		wait := e.rto(p) / 2
		if got {
			wait = min(max(4*c.CapsRTT, 20*time.Millisecond), wait)
		}
		if limit := requestTimeout(ctx); limit > 0 {
			wait = min(wait, limit/3)
		}
		if rtt, perr := e.Ping(WithRequestTimeout(ctx, wait), addr); perr == nil {
			c.Pong, c.PingRTT = true, rtt
		}
	}
	if err != nil {
		return c, err
	}
	c.Code = cc
	if cc != 0 {
		// A BMC that rejects the IPMI 2.0 extension bit speaks only 1.5.
		return c, &StageError{Stage: StageAuthCaps, Err: fmt.Errorf("%w: completion code %#02x to the IPMI 2.0 request", ErrNoIPMI20, cc)}
	}
	if !c.Caps.IPMI20 {
		return c, &StageError{Stage: StageAuthCaps, Err: ErrNoIPMI20}
	}
	return c, nil
}
