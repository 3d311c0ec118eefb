package sim

import (
	"context"
	"encoding/binary"
	"net"
	"time"

	"github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Completion codes used here (IPMI 2.0 table 5-2; Activate Session table
// 22-21).
const (
	ccOK               types.CompletionCode = 0x00
	ccNoSessionSlot    types.CompletionCode = 0x81 // Activate Session: no session slot available
	ccPrivilegeExceeds types.CompletionCode = 0x86 // Activate Session: requested level exceeds limit
	ccRequestTruncated types.CompletionCode = 0xC7
	ccParamOutOfRange  types.CompletionCode = 0xC9
	ccDataNotPresent   types.CompletionCode = 0xCB // also: sensor not present
	ccInvalidField     types.CompletionCode = 0xCC
)

// newRegistry is the command set every simulated BMC serves: go-ipmi's
// standard handlers plus the ones it lacks (System GUID, SEL, sensor
// readings) and a few replaced to behave like common BMCs.
func newRegistry() *handlers.Registry {
	r := handlers.NewRegistry()
	r.Use(trackSessionClose) // before any Register: wraps every handler
	r.Use(sessionQuirks)
	handlers.RegisterAllHandlers(r)
	r.RegisterFunc(types.CommandGetChannelCipherSuites, handleGetChannelCipherSuites)

	r.RegisterFunc(types.CommandGetChannelAuthCapabilities, handleGetChannelAuthCaps)
	r.RegisterFunc(types.CommandGetSystemGUID, handleGetSystemGUID)
	r.RegisterFunc(types.CommandGetChassisStatus, handleGetChassisStatus)
	r.RegisterFunc(types.CommandChassisControl, handleChassisControl)
	r.RegisterFunc(types.CommandGetSensorReading, handleGetSensorReading)
	r.RegisterFunc(types.CommandGetSELInfo, handleGetSELInfo)
	r.RegisterFunc(types.CommandReserveSEL, handleReserveSEL)
	r.RegisterFunc(types.CommandGetSELEntry, handleGetSELEntry)
	r.RegisterFunc(types.CommandGetSELTime, handleGetSELTime)
	r.RegisterFunc(types.CommandActivateSession, handleActivateSession)
	r.RegisterFunc(types.CommandGetSessionInfo, handleGetSessionInfo)
	r.RegisterFunc(types.CommandCloseSession, handleCloseSession)
	r.RegisterFunc(cmdBladeStatus, handleBladeStatus)
	r.RegisterFunc(cmdSetBladeIdentify, handleSetBladeIdentify)
	r.RegisterFunc(cmdBladeIdentify, handleBladeIdentify)
	r.RegisterFunc(types.CommandSendMessage, handleSendMessage)
	return r
}

// trackSessionClose counts sessions ended by a Close Session request (not
// by expiry), and notices IPMI 1.5 sessions ending so (RMCP+ sessions are
// followed through the session table's removal hook).
func trackSessionClose(next handlers.Handler) handlers.Handler {
	return handlers.HandlerFunc(func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		rsp, cc, err := next.Handle(ctx, hctx, req)
		if cc != ccOK || hctx == nil || hctx.Command.NetFn != types.NetFnAppRequest || hctx.Command.ID != types.CommandCloseSession.ID || len(req) < 4 {
			return rsp, cc, err
		}
		if b := simOf(hctx.BMC.HAL()); b != nil {
			b.ctr.closedByClient.Add(1)
			if hctx.V15Session != nil {
				b.sessionEnded(false, binary.LittleEndian.Uint32(req[0:4]))
			}
		}
		return rsp, cc, err
	})
}

// handleGetChannelAuthCaps implements Get Channel Authentication
// Capabilities (App 38h) with the very bytes of go-ipmi's handler, which
// looks up all 63 user slots for the login bits and makes an error value
// for every empty one: a sixth of a simulated BMC's CPU when a fleet is
// checked. This looks up only as many slots as it takes to meet every
// configured user.
func handleGetChannelAuthCaps(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 2 {
		return nil, types.CodeRequestDataTruncated, nil
	}
	ch := req[0] & 0x0f
	if ch == 0x0e { // the channel this request came in on: the LAN channel
		ch = lanChannel
	}
	m := hctx.BMC
	resp := make([]byte, 8)
	resp[0] = ch
	resp[1] = 0x80 // IPMI 2.0 extended capabilities
	v15 := m != nil && m.V15LANEnabled()
	if v15 {
		for _, t := range m.ResolvedV15AuthTypes() {
			resp[1] |= bmc.V15AuthTypeToCapsBit(t)
		}
	}
	if m != nil {
		if c, err := m.Channels.Get(ch); err == nil && c != nil {
			resp[2] = 0x04 // non-null user names enabled
			if m.HasKG() {
				resp[2] |= 0x20
			}
			if !c.PerMessageAuth {
				resp[2] |= 0x10
			}
			if !c.UserLevelAuth {
				resp[2] |= 0x08
			}
			resp[2] |= loginBits(m.Users)
		}
	}
	resp[3] = 0x02 // IPMI 2.0 connections
	if v15 {
		resp[3] |= 0x01
	}
	if b := simOf(m.HAL()); b != nil {
		switch q := b.faultSet().Quirk; {
		case q&QuirkIPMI15Only != 0:
			// No IPMI 2.0 extended data: an IPMI 1.5 BMC ignores the
			// request's bit 7.
			resp[1] = 0x04 // MD5
			resp[2] &^= 0x20
			resp[3] = 0
		case q&QuirkAuthCaps != 0:
			// Bogus: no authentication type, K_g set, no user with a
			// name, IPMI 1.5 only.
			resp[1], resp[2], resp[3] = 0x80, 0x20, 0x01
		}
	}
	return resp, ccOK, nil
}

// handleGetChannelCipherSuites implements Get Channel Cipher Suites (App
// 54h) as go-ipmi's handler does, 16 bytes of records per list index, from
// records the quirks may bend (cipherRecords).
func handleGetChannelCipherSuites(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 2 {
		return nil, types.CodeRequestDataTruncated, nil
	}
	ch := req[0] & 0x0f
	if ch == 0x0e {
		ch = lanChannel
	}
	resp := []byte{ch}
	if hctx == nil || hctx.BMC == nil {
		return resp, ccOK, nil
	}
	var q QuirkSet
	if b := simOf(hctx.BMC.HAL()); b != nil {
		q = b.faultSet().Quirk
	}
	rec := cipherRecords(hctx.BMC, q)
	index := 0
	if len(req) >= 3 {
		index = int(req[2] & 0x3f)
	}
	if start := index * 16; start < len(rec) {
		resp = append(resp, rec[start:min(start+16, len(rec))]...)
	}
	return resp, ccOK, nil
}

// sessionQuirks bends in-session replies: no reply to Close Session
// (no_close_reply), a sequence number skipped after every reply
// (seq_gaps).
func sessionQuirks(next handlers.Handler) handlers.Handler {
	return handlers.HandlerFunc(func(ctx context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
		rsp, cc, err := next.Handle(ctx, hctx, req)
		if hctx == nil || hctx.Session == nil || hctx.BMC == nil {
			return rsp, cc, err
		}
		b := simOf(hctx.BMC.HAL())
		if b == nil {
			return rsp, cc, err
		}
		q := b.faultSet().Quirk
		if q&QuirkBadChecksum != 0 {
			b.noteChecksum(hctx.Session)
		}
		if q&QuirkSeqGaps != 0 {
			hctx.Session.NextOutboundSeq() // skipped: the reply gets the one after
		}
		if q&QuirkNoCloseReply != 0 && hctx.Command.NetFn == types.NetFnAppRequest && hctx.Command.ID == types.CommandCloseSession.ID {
			if a, ok := hctx.Session.GetAddr().(*net.UDPAddr); ok {
				b.noReply.Store(unmapped(a), struct{}{})
			}
		}
		return rsp, cc, err
	})
}

// loginBits are byte 3's bits 2:0 of the capabilities: some enabled user
// has a name, has none (null user), has none and no password (anonymous).
func loginBits(users *bmc.UserStore) uint8 {
	var flags uint8
	left := users.Count()
	for id := uint8(1); id <= bmc.MaxUsers && left > 0; id++ {
		u, err := users.Get(id)
		if err != nil {
			continue
		}
		left--
		if !u.Enabled {
			continue
		}
		if u.Name != "" {
			flags |= 0x04
			continue
		}
		flags |= 0x02
		if u.Password == ([bmc.MaxPasswordLen]byte{}) {
			flags |= 0x01
		}
	}
	return flags
}

// handleGetSystemGUID implements Get System GUID (App 37h): the 16 GUID
// bytes as stored (the HAL's: RAKP 2 may carry another, by quirk).
func handleGetSystemGUID(_ context.Context, hctx *handlers.HandlerContext, _ []byte) ([]byte, types.CompletionCode, error) {
	if b := simOf(hctx.BMC.HAL()); b != nil && b.faultSet().Quirk&QuirkGUID0xD4 != 0 {
		return nil, types.CompletionCode(0xd4), nil // quirk guid_0xd4
	}
	g := hctx.BMC.GUID
	if h, ok := hctx.BMC.HAL().(*simHAL); ok {
		g = h.guid
	}
	return append([]byte(nil), g[:]...), ccOK, nil
}

// handleGetChassisStatus implements Get Chassis Status (Chassis 01h) with
// the identify LED state, which go-ipmi's handler leaves out.
func handleGetChassisStatus(_ context.Context, hctx *handlers.HandlerContext, _ []byte) ([]byte, types.CompletionCode, error) {
	b := simOf(hctx.BMC.HAL())
	if b == nil {
		return nil, types.CodeNotSupported, nil
	}
	var cur byte = 0x20 // power restore policy: previous state
	if b.power.Load() {
		cur |= 0x01
	}
	misc := byte(0x40) | b.identifyState()<<4 // identify supported + state
	return []byte{cur, 0x00, misc}, ccOK, nil
}

// handleChassisControl implements Chassis Control (Chassis 02h). Soft
// shutdown powers off (go-ipmi maps it to a warm reset), unless the
// soft_off_ignored fault is set: then it is accepted and nothing happens,
// as with an OS that ignores the ACPI power button.
func handleChassisControl(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	b := simOf(hctx.BMC.HAL())
	if b == nil {
		return nil, types.CodeNotSupported, nil
	}
	if len(req) < 1 {
		return nil, ccRequestTruncated, nil
	}
	switch req[0] & 0x0F {
	case 0x00: // power down
		b.power.Store(false)
	case 0x05: // soft shutdown (ACPI power button): up to the OS
		if !b.faultSet().SoftOffIgnored {
			b.power.Store(false)
		}
	case 0x01: // power up
		b.power.Store(true)
	case 0x02: // power cycle
		b.power.Store(true)
	case 0x03: // hard reset: the host reboots, power unchanged
	case 0x04: // diagnostic interrupt
	default:
		return nil, ccInvalidField, nil
	}
	return nil, ccOK, nil
}

// handleGetSensorReading implements Get Sensor Reading (Sensor/Event 2Dh).
func handleGetSensorReading(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	b := simOf(hctx.BMC.HAL())
	if b == nil {
		return nil, types.CodeNotSupported, nil
	}
	if len(req) < 1 {
		return nil, ccRequestTruncated, nil
	}
	s := sensorByNum(req[0])
	if s == nil {
		return nil, ccDataNotPresent, nil
	}
	// reading, event messages + scanning enabled, threshold status (bits
	// 7:6 reserved, returned as 1b), reserved (80h).
	return []byte{s.reading(b), 0xC0, 0xC0, 0x80}, ccOK, nil
}

// ---------------------------------------------------------------------------
// SEL: a handful of fixed entries per BMC, derived from its identity.

const selRecordSize = 16

type selTemplate struct {
	stype, snum, etype, d1, d2, d3 uint8
}

var selTemplates = []selTemplate{
	{0x09, 0x50, 0x6F, 0x00, 0xFF, 0xFF}, // power unit: power off
	{0x09, 0x50, 0xEF, 0x00, 0xFF, 0xFF}, // power unit: power off deasserted (on)
	{0x01, 0x02, 0x01, 0x57, 0x52, 0x50}, // CPU1 temp upper non-critical going high
	{0x04, 0x03, 0x01, 0x52, 0x08, 0x0A}, // FAN1 lower critical going low
	{0x05, 0x51, 0x6F, 0x00, 0xFF, 0xFF}, // chassis intrusion
	{0x08, 0x52, 0x6F, 0x01, 0xFF, 0xFF}, // power supply failure detected
	{0x0C, 0x53, 0x6F, 0x01, 0x00, 0xFF}, // memory uncorrectable ECC
}

// selBase is the time the simulated event logs were cleared, per BMC.
func (b *BMC) selBase() uint32 {
	const jan2025 = 1735689600
	return jan2025 + uint32(mix(b.f.seed, uint64(b.index), saltSEL)%(90*86400))
}

// selCount is the number of entries in the BMC's SEL (3-6).
func (b *BMC) selCount() int {
	return 3 + int(mix(b.f.seed, uint64(b.index), saltSEL+1)%4)
}

// selRecord builds SEL entry i (0-based); its record ID is i+1.
func (b *BMC) selRecord(i int) []byte {
	r := make([]byte, selRecordSize)
	binary.LittleEndian.PutUint16(r[0:2], uint16(i+1))
	r[2] = 0x02 // system event record
	ts := b.selBase()
	var h uint64
	for j := 1; j <= i; j++ {
		h = mix(b.f.seed, uint64(b.index), saltSEL+uint64(2+j))
		ts += 3600 * (1 + uint32(h%48)) // hours apart, in order
	}
	binary.LittleEndian.PutUint32(r[3:7], ts)
	r[7], r[8] = 0x20, 0x00 // generator: BMC
	r[9] = 0x04             // IPMI 2.0 event message format
	if i == 0 {
		// Event logging disabled: log area reset/cleared.
		r[10], r[11], r[12], r[13], r[14], r[15] = 0x10, 0x00, 0x6F, 0x02, 0xFF, 0xFF
		return r
	}
	t := selTemplates[h%uint64(len(selTemplates))]
	r[10], r[11], r[12], r[13], r[14], r[15] = t.stype, t.snum, t.etype, t.d1, t.d2, t.d3
	return r
}

func handleGetSELInfo(_ context.Context, hctx *handlers.HandlerContext, _ []byte) ([]byte, types.CompletionCode, error) {
	b := simOf(hctx.BMC.HAL())
	if b == nil {
		return nil, types.CodeNotSupported, nil
	}
	n := b.selCount()
	rsp := make([]byte, 14)
	rsp[0] = 0x51 // SEL version
	binary.LittleEndian.PutUint16(rsp[1:3], uint16(n))
	binary.LittleEndian.PutUint16(rsp[3:5], uint16((512-n)*selRecordSize))
	last := b.selRecord(n - 1)
	copy(rsp[5:9], last[3:7])                                // most recent addition
	binary.LittleEndian.PutUint32(rsp[9:13], b.selBase()-60) // most recent erase
	rsp[13] = 0x02                                           // Reserve SEL supported
	return rsp, ccOK, nil
}

func handleReserveSEL(_ context.Context, hctx *handlers.HandlerContext, _ []byte) ([]byte, types.CompletionCode, error) {
	b := simOf(hctx.BMC.HAL())
	if b == nil {
		return nil, types.CodeNotSupported, nil
	}
	id := uint16(b.selResv.Add(1))
	if id == 0 {
		id = uint16(b.selResv.Add(1))
	}
	return binary.LittleEndian.AppendUint16(nil, id), ccOK, nil
}

func handleGetSELEntry(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	b := simOf(hctx.BMC.HAL())
	if b == nil {
		return nil, types.CodeNotSupported, nil
	}
	if len(req) < 6 {
		return nil, ccRequestTruncated, nil
	}
	id := binary.LittleEndian.Uint16(req[2:4])
	off, count := int(req[4]), int(req[5])
	n := b.selCount()
	var i int
	switch {
	case id == 0x0000:
		i = 0
	case id == 0xFFFF:
		i = n - 1
	case int(id) <= n:
		i = int(id) - 1
	default:
		return nil, ccDataNotPresent, nil
	}
	if off >= selRecordSize {
		return nil, ccParamOutOfRange, nil
	}
	if count == 0xFF || off+count > selRecordSize {
		count = selRecordSize - off
	}
	next := uint16(0xFFFF)
	if i+1 < n {
		next = uint16(i + 2)
	}
	rec := b.selRecord(i)
	rsp := binary.LittleEndian.AppendUint16(make([]byte, 0, 2+count), next)
	return append(rsp, rec[off:off+count]...), ccOK, nil
}

func handleGetSELTime(context.Context, *handlers.HandlerContext, []byte) ([]byte, types.CompletionCode, error) {
	return binary.LittleEndian.AppendUint32(nil, uint32(time.Now().Unix())), ccOK, nil
}

// ---------------------------------------------------------------------------
// IPMI 1.5 Activate Session

// handleActivateSession replaces go-ipmi's Activate Session (App 3Ah). It
// applies the simulator's session policy: the fleet's slot limit counts
// RMCP+ and IPMI 1.5 sessions together, slots_full refuses every session,
// and, like most BMCs, one account may hold several sessions (go-ipmi
// allows one per user, so a console whose earlier session has not timed
// out yet is refused with "BMC busy").
func handleActivateSession(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 22 {
		return nil, ccRequestTruncated, nil
	}
	sess := hctx.V15Session
	if sess == nil || sess.State != bmc.V15SessionStatePending {
		return nil, handlers.CCV15InvalidSessionID, nil
	}
	authType := bmc.V15AuthType(req[0] & 0x0F)
	if authType != sess.AuthType {
		return nil, handlers.CCV15InvalidSessionID, nil
	}
	requested := bmc.PrivilegeLevel(req[1] & 0x0F)
	if requested == 0 {
		return nil, types.CodeParameterOutOfRange, nil
	}
	var challenge [16]byte
	copy(challenge[:], req[2:18])
	if challenge != sess.Challenge {
		return nil, handlers.CCV15InvalidSessionID, nil
	}
	if cc := authorizeV15(hctx, sess, requested); cc != ccOK {
		return nil, cc, nil
	}
	initialOutbound := binary.LittleEndian.Uint32(req[18:22])
	if initialOutbound == 0 {
		return nil, handlers.CCV15InvalidSessionID, nil
	}
	if b := simOf(hctx.BMC.HAL()); b != nil {
		co := b.cur.Load()
		if b.faultSet().SlotsFull || (co != nil && co.bmc == hctx.BMC && b.sessionsInUse(co) >= b.f.slots) {
			b.ctr.refused.Add(1)
			return nil, ccNoSessionSlot, nil
		}
	}
	inboundSeq, err := bmc.GenerateInboundSeq()
	if err != nil {
		return nil, types.CodeUnspecifiedError, err
	}
	permanentID, err := bmc.GenerateInboundSeq()
	if err != nil {
		return nil, types.CodeUnspecifiedError, err
	}
	if err := hctx.BMC.V15Sessions.Activate(sess, permanentID, inboundSeq, initialOutbound, requested); err != nil {
		return nil, ccNoSessionSlot, nil
	}
	rspAuth := sess.AuthType
	if hctx.Channel != nil && !hctx.Channel.PerMessageAuth {
		rspAuth = bmc.V15AuthTypeNone
	}
	rsp := make([]byte, 10)
	rsp[0] = uint8(rspAuth)
	binary.LittleEndian.PutUint32(rsp[1:5], sess.SessionID)
	binary.LittleEndian.PutUint32(rsp[5:9], inboundSeq)
	rsp[9] = uint8(requested)
	return rsp, ccOK, nil
}

// authorizeV15 checks the account may open a session at the requested
// privilege on the session's channel.
func authorizeV15(hctx *handlers.HandlerContext, sess *bmc.V15Session, requested bmc.PrivilegeLevel) types.CompletionCode {
	if sess.User == nil || !sess.User.Enabled {
		return handlers.CCV15InvalidSessionID
	}
	ch, err := hctx.BMC.Channels.Get(sess.Channel)
	if err != nil || ch.AccessMode == bmc.ChannelAccessDisabled || requested > ch.MaxPrivilege {
		return ccPrivilegeExceeds
	}
	access, ok := sess.User.ChannelAccess[sess.Channel]
	if !ok || !access.Enabled || access.MaxPrivilege == bmc.PrivilegeLevelNoAccess || requested > access.MaxPrivilege {
		return ccPrivilegeExceeds
	}
	if access.CallbackOnly && requested != bmc.PrivilegeLevelCallback {
		return ccPrivilegeExceeds
	}
	return ccOK
}
