package sim

import (
	"context"
	"encoding/binary"
	"net/netip"
	"slices"

	"github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// What the diagnosis asks a BMC or an enclosure manager beyond a check:
// the whole session table (Get Session Info by index, Close Session by
// handle), the cipher suites a fault leaves, a locked account, and the
// enclosure manager's view of its blades (lightsout's OEM commands, NetFn
// 0x30, documented in docs/simulator.md).

// applySuites replaces the cipher suites offered under the cipher_suites
// fault (after applySecurity chose go-ipmi's default or the weak set): the
// fault's list, plus suite 0 under cipher0 and 0-2 under insecure.
func applySuites(m *bmc.BMC, f *Faults) {
	if f.Quirk&QuirkSuite3Only != 0 {
		m.SetCipherSuites([]types.CipherSuiteID{types.CipherSuiteID3})
		return
	}
	if f.CipherSuites == 0 {
		return
	}
	s := f.security()
	var ids []types.CipherSuiteID
	for _, id := range f.CipherSuites.IDs() {
		ids = append(ids, types.CipherSuiteID(id))
	}
	add := func(id types.CipherSuiteID) {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	if s.cipher0 || s.weakSuites {
		add(types.CipherSuiteID0)
	}
	if s.weakSuites {
		add(types.CipherSuiteID1)
		add(types.CipherSuiteID2)
	}
	slices.Sort(ids)
	m.SetCipherSuites(ids)
}

// setLocked disables (or re-enables) the admin account, as a lockout does.
func setLocked(m *bmc.BMC, locked bool) {
	_ = m.Users.Update(adminID, func(u *bmc.User) error {
		u.Enabled = !locked
		return nil
	})
}

// lockedUser answers RAKP Message 1 for the locked admin account with RAKP
// Message 2 status 0x09 (invalid role), as OpenBMC answers for a disabled
// user.
func (b *BMC) lockedUser(co *core, pl []byte, f *Faults) []byte {
	if co == nil || !f.Locked || len(pl) < 28 {
		return nil
	}
	n := int(pl[27])
	if n > 16 || len(pl) < 28+n || string(pl[28:28+n]) != AdminUser {
		return nil
	}
	id := binary.LittleEndian.Uint32(pl[4:8])
	sess, err := co.bmc.Sessions.Get(id)
	if err != nil {
		return nil
	}
	consoleID := sess.ConsoleID
	_ = co.bmc.Sessions.Close(id)
	return rmcpPlusError(ptRAKP2, pl[0], rmcpInvalidRole, consoleID)
}

// Completion codes of the diagnosis handlers.
const (
	ccInvalidCommand        types.CompletionCode = 0xC1
	ccInsufficientPrivilege types.CompletionCode = 0xD4
)

// sessionEntry is one open session of a BMC, as Get Session Info reports
// it.
type sessionEntry struct {
	id      uint32
	v2      bool
	handle  uint8
	userID  uint8
	priv    uint8
	channel uint8
	ip      [4]byte
	port    uint16
}

// sessionTable lists the BMC's open sessions (RMCP+ and IPMI 1.5) by
// handle.
func (b *BMC) sessionTable(m *bmc.BMC) []sessionEntry {
	b.trMu.Lock()
	var v2, v15 []uint32
	consoles := map[uint32]netip.AddrPort{}
	if b.tr != nil {
		for id := range b.tr.v2 {
			v2 = append(v2, id)
		}
		for id := range b.tr.v15 {
			v15 = append(v15, id)
		}
		for id, a := range b.tr.consoles {
			consoles[id] = a
		}
	}
	b.trMu.Unlock()
	console := func(e *sessionEntry) {
		if a, ok := consoles[e.id]; ok && a.Addr().Unmap().Is4() {
			e.ip, e.port = a.Addr().Unmap().As4(), a.Port()
		}
	}
	var out []sessionEntry
	for _, id := range v2 {
		s, err := m.Sessions.Get(id)
		if err != nil || s.State != bmc.SessionStateActive {
			continue
		}
		e := sessionEntry{id: id, v2: true, handle: s.Handle, priv: uint8(s.PrivilegeLevel), channel: s.Channel}
		if s.User != nil {
			e.userID = s.User.ID
		}
		console(&e)
		out = append(out, e)
	}
	for _, id := range v15 {
		s, err := m.V15Sessions.Get(id)
		if err != nil || s.State != bmc.V15SessionStateActive {
			continue
		}
		e := sessionEntry{id: id, handle: s.Handle, priv: uint8(s.PrivilegeLevel), channel: s.Channel}
		if s.User != nil {
			e.userID = s.User.ID
		}
		console(&e)
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, c sessionEntry) int { return int(a.handle) - int(c.handle) })
	return out
}

// handleGetSessionInfo replaces go-ipmi's Get Session Info (App 3Dh), which
// only describes the caller's own session: index 0 is this session, N the
// N-th active session, FEh by handle, FFh by session ID; a session that
// does not exist answers with the table's size and occupancy only.
func handleGetSessionInfo(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	b := simOf(hctx.BMC.HAL())
	if b == nil {
		return nil, types.CodeNotSupported, nil
	}
	if len(req) < 1 {
		return nil, ccRequestTruncated, nil
	}
	table := b.sessionTable(hctx.BMC)
	head := []byte{0, clamp63(b.f.slots), clamp63(len(table))}
	var e *sessionEntry
	switch idx := req[0]; {
	case idx == 0x00:
		var id uint32
		switch {
		case hctx.Session != nil:
			id = hctx.Session.BMCID
		case hctx.V15Session != nil:
			id = hctx.V15Session.SessionID
		default:
			return nil, ccInvalidField, nil
		}
		for i := range table {
			if table[i].id == id {
				e = &table[i]
			}
		}
	case idx == 0xFE:
		if len(req) < 2 {
			return nil, ccRequestTruncated, nil
		}
		for i := range table {
			if table[i].handle == req[1] {
				e = &table[i]
			}
		}
	case idx == 0xFF:
		if len(req) < 5 {
			return nil, ccRequestTruncated, nil
		}
		id := binary.LittleEndian.Uint32(req[1:5])
		for i := range table {
			if table[i].id == id {
				e = &table[i]
			}
		}
	case int(idx) <= 0x3F:
		if int(idx) <= len(table) {
			e = &table[idx-1]
		}
	default:
		return nil, ccInvalidField, nil
	}
	if e == nil {
		// No such session: the table's size and occupancy only, which
		// ipmitool's "session info all" prints as an empty slot.
		return head, ccOK, nil
	}
	aux := byte(0x00)
	if e.v2 {
		aux = 0x10
	}
	rsp := append(head, e.userID&0x3F, e.priv&0x0F, aux|e.channel&0x0F)
	rsp[0] = e.handle
	rsp = append(rsp, e.ip[:]...)
	rsp = append(rsp, 0, 0, 0, 0, 0, 0) // MAC: not tracked
	rsp = binary.LittleEndian.AppendUint16(rsp, e.port)
	return rsp, ccOK, nil
}

func clamp63(n int) byte {
	if n > 0x3F {
		return 0x3F
	}
	return byte(n)
}

// handleCloseSession replaces go-ipmi's Close Session (App 3Ch) to accept
// the IPMI 2.0 form that names a session by handle (session ID 0, handle
// in byte 5), and to require Administrator for closing a session other
// than the caller's own.
func handleCloseSession(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	if len(req) < 4 {
		return nil, ccRequestTruncated, nil
	}
	m := hctx.BMC
	id := binary.LittleEndian.Uint32(req[0:4])
	if id == 0 {
		if len(req) < 5 {
			return nil, ccRequestTruncated, nil
		}
		b := simOf(m.HAL())
		if b == nil {
			return nil, types.CodeNotSupported, nil
		}
		for _, e := range b.sessionTable(m) {
			if e.handle == req[4] {
				id = e.id
			}
		}
		if id == 0 {
			return nil, types.CodeParameterOutOfRange, nil
		}
	}
	own := hctx.Session != nil && hctx.Session.BMCID == id || hctx.V15Session != nil && hctx.V15Session.SessionID == id
	if !own {
		priv := bmc.PrivilegeLevel(0)
		switch {
		case hctx.Session != nil:
			priv = hctx.Session.PrivilegeLevel
		case hctx.V15Session != nil:
			priv = hctx.V15Session.PrivilegeLevel
		}
		if priv < bmc.PrivilegeLevelAdministrator {
			return nil, ccInsufficientPrivilege, nil
		}
	}
	if err := m.Sessions.Close(id); err == nil {
		return nil, ccOK, nil
	}
	if err := m.V15Sessions.Close(id); err != nil {
		return nil, types.CodeParameterOutOfRange, nil
	}
	if b := simOf(m.HAL()); b != nil {
		b.sessionEnded(false, id)
	}
	return nil, ccOK, nil
}

// The enclosure manager's OEM commands (NetFn 0x30).
var (
	cmdBladeStatus      = types.Command{ID: 0x01, NetFn: 0x30, Name: "lightsout Get Blade Status"}
	cmdSetBladeIdentify = types.Command{ID: 0x02, NetFn: 0x30, Name: "lightsout Set Blade Identify"}
	cmdBladeIdentify    = types.Command{ID: 0x03, NetFn: 0x30, Name: "lightsout Get Blade Identify"}
)

// bladeAt returns the enclosure manager behind hctx and the blade in the
// requested slot, or the completion code to answer.
func bladeAt(hctx *handlers.HandlerContext, req []byte) (*BMC, types.CompletionCode) {
	em := simOf(hctx.BMC.HAL())
	if em == nil || em.kind != KindEnclosureManager || em.encl == nil {
		return nil, ccInvalidCommand
	}
	if len(req) < 1 {
		return nil, ccRequestTruncated
	}
	slot := int(req[0])
	if slot < 1 || slot > len(em.encl.blades) {
		return nil, ccParamOutOfRange
	}
	return em.encl.blades[slot-1], ccOK
}

// bmcAlive: the blade's BMC firmware runs (silent models a dead BMC).
func (b *BMC) bmcAlive() bool { return !b.faultSet().Silent }

// answersEM: the blade's BMC answers its enclosure manager over the
// enclosure's internal link.
func (b *BMC) answersEM() bool { return b.bmcAlive() && !b.faultSet().EMLink }

// handleBladeStatus: request [slot]; response [slot, flags] with bit 0
// present, bit 1 the BMC answers the enclosure manager, bit 2 power on
// (meaningful only with bit 1).
func handleBladeStatus(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	blade, cc := bladeAt(hctx, req)
	if cc != ccOK {
		return nil, cc, nil
	}
	flags := byte(0x01)
	if blade.answersEM() {
		flags |= 0x02
		if blade.power.Load() {
			flags |= 0x04
		}
	}
	return []byte{req[0], flags}, ccOK, nil
}

// handleSetBladeIdentify: request [slot, 0 off | 1 on] (Operator). The
// enclosure manager asserts the blade's identify line; the lamp lights if
// the blade's BMC runs, whatever the state of the management link.
func handleSetBladeIdentify(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	blade, cc := bladeAt(hctx, req)
	if cc != ccOK {
		return nil, cc, nil
	}
	if len(req) < 2 {
		return nil, ccRequestTruncated, nil
	}
	if hctx.Session == nil || hctx.Session.PrivilegeLevel < bmc.PrivilegeLevelOperator {
		return nil, ccInsufficientPrivilege, nil
	}
	if req[1] > 1 {
		return nil, ccInvalidField, nil
	}
	if blade.bmcAlive() {
		if req[1] == 1 {
			blade.setIdentify(0xFF)
		} else {
			blade.setIdentify(0)
		}
	}
	return nil, ccOK, nil
}

// handleBladeIdentify: request [slot]; response [slot, 1 lit | 0 dark], as
// the enclosure manager senses the lamp.
func handleBladeIdentify(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	blade, cc := bladeAt(hctx, req)
	if cc != ccOK {
		return nil, cc, nil
	}
	lit := byte(0)
	if blade.bmcAlive() && blade.identifyState() != 0 {
		lit = 1
	}
	return []byte{req[0], lit}, ccOK, nil
}
