package sim

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/server"

	"github.com/lightsout/lightsout/internal/guid"
)

// Kind tells a server's BMC from an enclosure manager.
type Kind string

// The kinds of simulated endpoints.
const (
	KindBMC              Kind = "bmc"
	KindEnclosureManager Kind = "enclosure_manager"
)

// Account names every simulated BMC knows (the password is the fleet's).
const (
	AdminUser    = "admin"
	OperatorUser = "operator"
	PlainUser    = "user"
)

// User slots of the accounts (slot 1 is the anonymous user, disabled on
// the LAN channel; slot 6 holds the vendor default account under the
// default_password fault).
const (
	adminID    = 2
	operatorID = 3
	userID     = 4
	defaultID  = 6
)

// serverBufferSize is the go-ipmi server's read buffer: IPMI datagrams are
// far below an Ethernet MTU.
const serverBufferSize = 1536

// inflightExpiry retires a request that never got an answer from the
// in-flight count (the server drops some packets without a word).
const inflightExpiry = 2 * time.Second

// maxTracked bounds the per-BMC tables of requests in flight and pending
// handshakes, so a flood costs nothing more than its packets.
const maxTracked = 256

// BMC is one simulated IPMI endpoint: a server's BMC (possibly a blade in
// an enclosure) or an enclosure manager. All methods are safe for
// concurrent use.
type BMC struct {
	f      *Fleet
	index  int // position in the fleet; seeds the identity
	name   string
	kind   Kind
	encl   *Enclosure
	slot   int
	vendor Vendor
	home   netip.AddrPort // the address it was registered with

	origGUID guid.GUID
	power    atomic.Bool
	identify atomic.Int64 // identify LED on until this Unix nanosecond
	selResv  atomic.Uint32

	faults atomic.Pointer[Faults]
	addr   atomic.Pointer[net.UDPAddr] // current address (differs from home after a swap)
	cur    atomic.Pointer[core]

	mu      sync.Mutex // serializes control operations; guards the fields below
	core    *core      // current firmware run (mirrored in cur for the packet path)
	guidGen int
	curGUID guid.GUID

	ctr counters

	trMu sync.Mutex
	tr   *tracking // allocated on first use

	rngMu sync.Mutex
	rng   *rand.Rand
	rngN  uint64

	rf *rfService // Redfish service (nil unless Config.Redfish)

	noReply sync.Map                // netip.AddrPort → struct{}: the next reply there is not sent (quirk no_close_reply)
	badSum  map[uint32]*bmc.Session // by console session ID: replies re-sealed with a bad checksum (quirk bad_checksum); guarded by trMu
}

// core is one run of the BMC firmware: go-ipmi state, server and transport.
// A restart (new GUID) replaces it.
type core struct {
	bmc  *bmc.BMC
	srv  *server.Server
	conn *udpConn
	done chan struct{}
}

// counters are the BMC's statistics, updated atomically.
type counters struct {
	packetsIn, packetsOut atomic.Uint64
	droppedIn, droppedOut atomic.Uint64
	corrupted             atomic.Uint64
	opened, closed        atomic.Uint64
	closedByClient        atomic.Uint64
	refused, authFailures atomic.Uint64
	authAttempts          atomic.Uint64
	open, maxOpen         atomic.Int64
	maxPerClient          atomic.Int64
	inflight, maxInflight atomic.Int64
	restarts              atomic.Uint64
}

// Counters is a snapshot of a BMC's statistics since the fleet started.
type Counters struct {
	// PacketsIn counts datagrams read from the socket (before faults).
	PacketsIn uint64 `json:"packets_in"`
	// PacketsOut counts datagrams written to the socket.
	PacketsOut uint64 `json:"packets_out"`
	// DroppedIn counts datagrams faults dropped on the way in (silent,
	// lossy, enclosure down).
	DroppedIn uint64 `json:"dropped_in"`
	// DroppedOut counts replies faults dropped (timeout_rate).
	DroppedOut uint64 `json:"dropped_out"`
	// Corrupted counts replies the malformed fault mangled.
	Corrupted uint64 `json:"corrupted"`
	// SessionsOpened counts sessions that completed authentication (RMCP+
	// RAKP or IPMI 1.5 Activate Session).
	SessionsOpened uint64 `json:"sessions_opened"`
	// SessionsClosed counts sessions that ended: Close Session, inactivity
	// timeout, or a BMC restart.
	SessionsClosed uint64 `json:"sessions_closed"`
	// SessionsClosedByClient counts sessions ended by a Close Session
	// request: opened minus these is what consoles left to expire.
	SessionsClosedByClient uint64 `json:"sessions_closed_by_client"`
	// SessionsOpen is the number of sessions open now.
	SessionsOpen int64 `json:"sessions_open"`
	// MaxSessionsOpen is the most sessions ever open at the same time.
	MaxSessionsOpen int64 `json:"max_sessions_open"`
	// MaxSessionsPerClient is the most sessions ever open at the same time
	// from one client IP address.
	MaxSessionsPerClient int64 `json:"max_sessions_per_client"`
	// SessionsRefused counts session requests refused for want of a slot
	// (including the slots_full fault).
	SessionsRefused uint64 `json:"sessions_refused"`
	// AuthAttempts counts authentication attempts: RMCP+ RAKP Message 1
	// and IPMI 1.5 Activate Session requests.
	AuthAttempts uint64 `json:"auth_attempts"`
	// AuthFailures counts authentications the BMC refused (unknown user,
	// bad password proof, privilege). A console that finds the BMC's
	// RAKP 2 proof wrong (its password is wrong) just gives up: that
	// shows as an attempt without a session, not here.
	AuthFailures uint64 `json:"auth_failures"`
	// InFlight is the number of distinct requests received and not yet
	// answered. The copies of a retransmitted request are one request
	// (same session setup message and tag, same session and IPMI
	// message, or identical bytes: see reqKey) until the last is answered.
	InFlight int64 `json:"in_flight"`
	// MaxInFlight is the most distinct requests ever waiting for an answer
	// at the same time (a copy nobody answers retires after 2s).
	MaxInFlight int64 `json:"max_in_flight"`
	// Restarts counts BMC restarts (GUID changes, a BMC key dropped).
	Restarts uint64 `json:"restarts"`
}

// tracking follows sessions and requests in flight, for the counters.
type tracking struct {
	v2        map[uint32]netip.Addr // open RMCP+ sessions by BMC session ID → client IP
	v15       map[uint32]netip.Addr // open IPMI 1.5 sessions
	perClient map[netip.Addr]int
	consoles  map[uint32]netip.AddrPort    // by session ID: the console's address at session setup
	rakp      map[rakpKey]rakpEntry        // RAKP 3 seen, RAKP 4 not yet sent
	pending   map[*net.UDPAddr]pendingCopy // by datagram (go-ipmi answers with the pointer it read)
	requests  map[reqKey]int               // distinct requests in pending → their copies
	bySource  map[netip.Addr]uint64        // sessions opened, by client IP (sources.go)
}

type rakpKey struct {
	from netip.AddrPort
	tag  uint8
}

type rakpEntry struct {
	id uint32
	at time.Time
}

// Name is the BMC's name (bmc-00001, or the enclosure's name for an
// enclosure manager).
func (b *BMC) Name() string { return b.name }

// Kind tells a server's BMC from an enclosure manager.
func (b *BMC) Kind() Kind { return b.kind }

// Enclosure is the name of the enclosure a blade sits in (or an enclosure
// manager manages); "" for a rack server.
func (b *BMC) Enclosure() string {
	if b.encl == nil {
		return ""
	}
	return b.encl.name
}

// Slot is the blade's slot in its enclosure (1-based); 0 otherwise.
func (b *BMC) Slot() int { return b.slot }

// Vendor is the BMC's vendor and firmware profile.
func (b *BMC) Vendor() Vendor { return b.vendor }

// HomeAddr is the address the BMC was registered (and exported) with.
func (b *BMC) HomeAddr() netip.AddrPort { return b.home }

// Addr is the address the BMC answers on now (another BMC's after a swap).
func (b *BMC) Addr() netip.AddrPort { return b.currentAddr().AddrPort() }

func (b *BMC) currentAddr() *net.UDPAddr { return b.addr.Load() }

// RegisteredGUID is the System GUID the BMC had when the fleet started,
// the one the inventory pins.
func (b *BMC) RegisteredGUID() guid.GUID { return b.origGUID }

// GUID is the System GUID the BMC reports now.
func (b *BMC) GUID() guid.GUID {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.curGUID
}

// PowerOn reports the simulated chassis power state.
func (b *BMC) PowerOn() bool { return b.power.Load() }

// SetPower switches the simulated chassis power, as Chassis Control does.
func (b *BMC) SetPower(on bool) { b.power.Store(on) }

// Faults returns the faults set on this BMC.
func (b *BMC) Faults() Faults { return *b.faults.Load() }

func (b *BMC) faultSet() *Faults { return b.faults.Load() }

func (b *BMC) enclosureDown() bool { return b.encl != nil && b.encl.down.Load() }

// Counters returns a snapshot of the BMC's statistics.
func (b *BMC) Counters() Counters {
	b.reconcile()
	c := &b.ctr
	return Counters{
		PacketsIn:              c.packetsIn.Load(),
		PacketsOut:             c.packetsOut.Load(),
		DroppedIn:              c.droppedIn.Load(),
		DroppedOut:             c.droppedOut.Load(),
		Corrupted:              c.corrupted.Load(),
		SessionsOpened:         c.opened.Load(),
		SessionsClosed:         c.closed.Load(),
		SessionsClosedByClient: c.closedByClient.Load(),
		SessionsOpen:           c.open.Load(),
		MaxSessionsOpen:        c.maxOpen.Load(),
		MaxSessionsPerClient:   c.maxPerClient.Load(),
		SessionsRefused:        c.refused.Load(),
		AuthAttempts:           c.authAttempts.Load(),
		AuthFailures:           c.authFailures.Load(),
		InFlight:               c.inflight.Load(),
		MaxInFlight:            c.maxInflight.Load(),
		Restarts:               c.restarts.Load(),
	}
}

func storeMax(v *atomic.Int64, n int64) {
	for {
		cur := v.Load()
		if n <= cur || v.CompareAndSwap(cur, n) {
			return
		}
	}
}

// ---------------------------------------------------------------------------
// Lifecycle

// startCore boots the BMC firmware on sock (nil: port closed). b.mu held
// (or the BMC not yet shared).
func (b *BMC) startCore(sock *net.UDPConn) {
	// RAKP 2 carries go-ipmi's BMC.GUID; Get System GUID answers the
	// HAL's (handleGetSystemGUID). They differ only by quirk.
	rakpGUID := [16]byte(b.curGUID)
	switch q := b.faultSet().Quirk; {
	case q&QuirkRAKP2GUIDZero != 0:
		rakpGUID = [16]byte{}
	case q&QuirkRAKP2GUIDOther != 0:
		rakpGUID = deriveGUID(b.f.seed, uint64(b.index), saltRAKPGUID)
	}
	m := bmc.New(b.vendor.deviceInfo(), rakpGUID, &simHAL{b: b, guid: b.curGUID}, bmc.WithClock(fleetClock{b.f}))
	m.Sessions = bmc.NewSessionStoreWithOptions(m.Clock(), bmc.WithMaxSessions(b.f.slots))
	co := &core{bmc: m, done: make(chan struct{})}
	m.Sessions.SetOnRemove(func(id uint32) {
		m.SOL.DeactivateBySession(id)
		b.sessionEnded(true, id)
	})
	b.installUsers(m)
	if b.faultSet().BMCKey {
		bmc.WithKG(b.bmcKey())(m)
	}
	co.conn = newUDPConn(b, sock)
	co.conn.c = co
	co.srv = server.NewServer(m, co.conn,
		server.WithHandlerRegistry(b.f.reg),
		server.WithServerBufferSize(serverBufferSize))
	b.core = co
	b.cur.Store(co)
	go func() {
		defer close(co.done)
		_ = serve(b.f.ctx, co.srv)
	}()
}

// serve runs the BMC's read loop below a padded stack frame.
//
// go-ipmi's server handles each datagram in a new goroutine, whose stack
// starts at the size the runtime has learned from the stacks it scanned
// at the last GC — and those are mostly the BMCs' idle read loops, a
// kilobyte or two deep. The handlers then need about 8 KiB (the HMACs of
// RAKP and of every in-session message), so every datagram's goroutine
// grew its stack twice: 7% of the simulator's CPU during a fleet check.
// Padding the read loops' frames teaches the runtime the size the
// handlers need.
//
//go:noinline
func serve(ctx context.Context, srv *server.Server) error {
	var pad [serveStackPad]byte
	keep(pad[:])
	return srv.Serve(ctx)
}

// serveStackPad makes a read loop's stack about as deep as a datagram
// handler's.
const serveStackPad = 4 << 10

//go:noinline
func keep([]byte) {}

// stopCore shuts the firmware down and waits for its read loop to end. The
// sessions it held are gone. b.mu held.
func (b *BMC) stopCore() {
	co := b.core
	if co == nil {
		return
	}
	_ = co.srv.Close()
	<-co.done
	b.core = nil
	b.cur.Store(nil)
	b.dropSessions()
}

// restart reboots the firmware (new identity), keeping the port state.
// b.mu held.
func (b *BMC) restart() error {
	open := b.core != nil && b.core.conn.hasSocket()
	b.stopCore()
	b.ctr.restarts.Add(1)
	var sock *net.UDPConn
	var err error
	if open {
		sock, err = bindUDP(b.currentAddr(), true)
	}
	b.startCore(sock)
	return err
}

func (b *BMC) installUsers(m *bmc.BMC) {
	f := b.faultSet()
	add := func(id uint8, name string, pw []byte, priv bmc.PrivilegeLevel) {
		u, err := m.Users.Add(id, name)
		if err != nil {
			return
		}
		fillUser(u, name, pw, priv)
	}
	if !f.UserRemoved {
		add(adminID, AdminUser, b.adminPassword(f), bmc.PrivilegeLevelAdministrator)
		setLocked(m, f.Locked)
	}
	if b.f.accounts.Operator {
		add(operatorID, OperatorUser, []byte(b.f.password), bmc.PrivilegeLevelOperator)
	}
	if b.f.accounts.User {
		add(userID, PlainUser, []byte(b.f.password), bmc.PrivilegeLevelUser)
	}
	b.applySecurity(m, f)
	applySuites(m, f)
}

func fillUser(u *bmc.User, name string, pw []byte, priv bmc.PrivilegeLevel) {
	u.Name = name
	u.SetPassword(pw)
	u.Enabled = true
	if u.ChannelAccess == nil {
		u.ChannelAccess = map[uint8]bmc.UserChannelAccess{}
	}
	u.ChannelAccess[lanChannel] = bmc.UserChannelAccess{MaxPrivilege: priv, Enabled: true}
}

const lanChannel = 1

// adminPassword is the fleet password, or under wrong_password one nobody
// was told.
func (b *BMC) adminPassword(f *Faults) []byte {
	if !f.WrongPassword {
		return []byte(b.f.password)
	}
	pw := fmt.Sprintf("chg%013x", mix(b.f.seed, uint64(b.index), saltPassword)&0xFFFFFFFFFFFFF)
	if pw == b.f.password {
		pw += "x"
	}
	return []byte(pw)
}

// bmcKey is the BMC key (K_G) the bmc_key fault sets: 20 bytes nobody
// was told, fixed by the fleet seed and the BMC.
func (b *BMC) bmcKey() []byte {
	k := make([]byte, 20)
	for i := 0; i < len(k); i += 8 {
		var w [8]byte
		binary.BigEndian.PutUint64(w[:], mix(b.f.seed, uint64(b.index), saltBMCKey+uint64(i)))
		copy(k[i:], w[:])
	}
	return k
}

// SetFaults replaces the BMC's faults (see [Fleet.SetFaults]).
func (b *BMC) SetFaults(f Faults) error { return b.setFaults(f) }

// setFaults applies a new fault set. b.mu must not be held.
func (b *BMC) setFaults(nf Faults) error {
	if err := nf.Validate("faults."); err != nil {
		return err
	}
	if nf.EMLink && (b.kind != KindBMC || b.encl == nil) {
		return fieldErr("em_link", "%s is not a blade: only a blade's BMC has a link to an enclosure manager", b.name)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.f.closed.Load() {
		return ErrClosed
	}
	old := *b.faultSet()
	nfCopy := nf
	b.faults.Store(&nfCopy)
	b.rngMu.Lock()
	b.rngN++
	b.rng = nil
	b.rngMu.Unlock()

	var errs []error
	if nf.GUIDReplaced != old.GUIDReplaced {
		if nf.GUIDReplaced {
			b.guidGen++
			b.curGUID = deriveGUID(b.f.seed, uint64(b.index), saltReplacedGUID+uint64(b.guidGen))
		} else {
			b.curGUID = b.origGUID
		}
	}
	// A motherboard swap reboots the BMC: new identity, sessions lost. So
	// does dropping the BMC key, which go-ipmi sets only at start.
	// So does a change of what RAKP 2 carries (quirks rakp2_guid_zero,
	// rakp2_guid_other: a firmware setting read at start).
	const rakpGUIDQuirks = QuirkRAKP2GUIDZero | QuirkRAKP2GUIDOther
	restarted := nf.GUIDReplaced != old.GUIDReplaced || old.BMCKey && !nf.BMCKey || nf.Quirk&rakpGUIDQuirks != old.Quirk&rakpGUIDQuirks
	if restarted {
		if err := b.restart(); err != nil {
			errs = append(errs, err)
		}
	} else if b.core != nil && (nf.WrongPassword != old.WrongPassword || nf.UserRemoved != old.UserRemoved || nf.Locked != old.Locked) {
		users := b.core.bmc.Users
		if nf.UserRemoved {
			_ = users.Delete(adminID)
		} else {
			pw := b.adminPassword(&nf)
			_ = users.Upsert(adminID, func(u *bmc.User) error {
				fillUser(u, AdminUser, pw, bmc.PrivilegeLevelAdministrator)
				u.Enabled = !nf.Locked
				return nil
			})
		}
	}
	if (nf.security() != old.security() || nf.CipherSuites != old.CipherSuites || nf.Quirk&QuirkSuite3Only != old.Quirk&QuirkSuite3Only) && b.core != nil && !restarted {
		b.applySecurity(b.core.bmc, &nf)
		applySuites(b.core.bmc, &nf)
	}
	if nf.BMCKey && !old.BMCKey && b.core != nil && !restarted {
		bmc.WithKG(b.bmcKey())(b.core.bmc)
	}
	if b.rf != nil {
		b.rf.faultsChanged(old, nf)
	}
	if nf.PortClosed != old.PortClosed && b.core != nil {
		if nf.PortClosed {
			b.core.conn.setSocket(nil)
		} else if !b.core.conn.hasSocket() {
			sock, err := bindUDP(b.currentAddr(), true)
			if err != nil {
				errs = append(errs, err)
			} else {
				b.core.conn.setSocket(sock)
			}
		}
	}
	return errors.Join(errs...)
}

// ---------------------------------------------------------------------------
// Transport hooks

// admit decides whether an incoming datagram reaches the server. Some are
// answered here instead (busy, unknown user).
func (b *BMC) admit(c *udpConn, pkt []byte, from *net.UDPAddr) bool {
	b.ctr.packetsIn.Add(1)
	f := b.faultSet()
	if f.Silent || f.EMLink || b.enclosureDown() || (f.Lossy > 0 && b.roll(f.Lossy)) {
		b.ctr.droppedIn.Add(1)
		return false
	}
	if f.SessionHang {
		if _, sid, _, ok := rmcpPlus(pkt); ok && sid != 0 {
			b.ctr.droppedIn.Add(1)
			return false
		}
	}
	if f.Quirk&QuirkNoPing != 0 && isPresencePing(pkt) {
		b.ctr.droppedIn.Add(1)
		return false
	}
	if f.Quirk != 0 {
		admit, reply := quirkIn(f.Quirk, c.c, pkt)
		if reply != nil {
			b.trackInflight(c.c, pkt, from)
			_, _ = b.emit(c, reply, from)
			return false
		}
		if !admit {
			b.ctr.droppedIn.Add(1)
			return false
		}
	}
	if pt, sid, pl, ok := rmcpPlus(pkt); ok && sid == 0 {
		switch pt {
		case ptOpenSessReq:
			if len(pl) >= 8 && (f.SlotsFull || b.v15HoldsSlots(c.c)) {
				b.trackInflight(c.c, pkt, from)
				_, _ = b.emit(c, rmcpPlusError(ptOpenSessRsp, pl[0], rmcpInsufficientResources, binary.LittleEndian.Uint32(pl[4:8])), from)
				return false
			}
			if f.Quirk != 0 {
				if reply := quirkOpenSession(f.Quirk, pl); reply != nil {
					b.trackInflight(c.c, pkt, from)
					_, _ = b.emit(c, reply, from)
					return false
				}
			}
		case ptRAKP1:
			b.ctr.authAttempts.Add(1)
			if reply := b.lockedUser(c.c, pl, f); reply != nil {
				b.trackInflight(c.c, pkt, from)
				_, _ = b.emit(c, reply, from)
				return false
			}
			if reply := b.unknownUser(c.c, pl); reply != nil {
				b.trackInflight(c.c, pkt, from)
				_, _ = b.emit(c, reply, from)
				return false
			}
		case ptRAKP3:
			if len(pl) >= 8 {
				b.noteRAKP3(from, pl[0], binary.LittleEndian.Uint32(pl[4:8]))
			}
		}
	} else if p, ok := parseV15(pkt); ok && p.authType != 0 {
		if netFn, cmd, _, ok := ipmiReq(p.msg); ok && netFn == 0x06 && cmd == 0x3A && p.sessionID != 0 {
			b.ctr.authAttempts.Add(1) // Activate Session
		}
	}
	b.trackInflight(c.c, pkt, from)
	return true
}

// unknownUser answers RAKP Message 1 for an account the BMC does not have
// with RAKP Message 2 status 0x0D (unauthorized name), as most BMCs do.
// (go-ipmi would answer with a decoy and fail at RAKP 3, which a console
// cannot tell from a wrong password.)
func (b *BMC) unknownUser(co *core, pl []byte) []byte {
	if co == nil || len(pl) < 28 {
		return nil
	}
	n := int(pl[27])
	if n > 16 || len(pl) < 28+n {
		return nil
	}
	name := string(pl[28 : 28+n])
	if u, err := co.bmc.Users.GetByName(name); err == nil && u.Enabled && u.ChannelAccess[lanChannel].Enabled {
		return nil
	}
	id := binary.LittleEndian.Uint32(pl[4:8])
	sess, err := co.bmc.Sessions.Get(id)
	if err != nil {
		return nil // the server answers "invalid session ID"
	}
	consoleID := sess.ConsoleID
	_ = co.bmc.Sessions.Close(id)
	return rmcpPlusError(ptRAKP2, pl[0], rmcpUnauthorizedName, consoleID)
}

// emit sends a reply through the faults.
func (b *BMC) emit(c *udpConn, data []byte, to *net.UDPAddr) (int, error) {
	n := len(data)
	data = b.observeOut(c, data, to)
	f := b.faultSet()
	if f.Quirk != 0 {
		data = quirkOut(f.Quirk, data)
		if f.Quirk&QuirkBadChecksum != 0 {
			data = b.badChecksum(data)
		}
		if f.Quirk&QuirkNoCloseReply != 0 && b.takeNoReply(to) {
			b.untrackInflight(to)
			b.ctr.droppedOut.Add(1)
			return n, nil
		}
	}
	if f.Silent || f.EMLink || b.enclosureDown() || (f.TimeoutRate > 0 && b.roll(f.TimeoutRate)) {
		b.untrackInflight(to)
		b.ctr.droppedOut.Add(1)
		return n, nil
	}
	if f.Malformed > 0 && b.roll(f.Malformed) {
		data = b.corrupt(data)
		b.ctr.corrupted.Add(1)
	}
	if f.Slow > 0 {
		buf := append([]byte(nil), data...)
		time.AfterFunc(time.Duration(f.Slow), func() {
			b.untrackInflight(to)
			_, _ = c.send(buf, to)
		})
		return n, nil
	}
	b.untrackInflight(to)
	if _, err := c.send(data, to); err != nil {
		return 0, err
	}
	return n, nil
}

// observeOut follows session setup in outgoing replies, and makes the IPMI
// 1.5 Activate Session reply carry the temporary session ID.
func (b *BMC) observeOut(c *udpConn, data []byte, to *net.UDPAddr) []byte {
	if pt, sid, pl, ok := rmcpPlus(data); ok {
		if sid != 0 || len(pl) < 2 {
			return data
		}
		switch pt {
		case ptOpenSessRsp:
			if pl[1] == rmcpInsufficientResources {
				b.ctr.refused.Add(1)
			}
		case ptRAKP2:
			if pl[1] != 0 {
				b.ctr.authFailures.Add(1)
			}
		case ptRAKP4:
			id, found := b.takeRAKP3(to, pl[0])
			if pl[1] != 0 {
				b.ctr.authFailures.Add(1)
			} else if found {
				b.sessionStarted(true, id, to)
			}
		}
		return data
	}
	if p, ok := parseV15(data); ok && p.authType != 0 {
		if netFn, cmd, cc, ok := ipmiRsp(p.msg); ok && netFn == 0x07 && cmd == 0x3A {
			switch cc {
			case 0x00:
				return b.fixActivateSession(c.c, data, p, to)
			case 0x81, 0x82, 0x83: // no slot: counted as refused
			default:
				b.ctr.authFailures.Add(1)
			}
		}
	}
	return data
}

// fixActivateSession rewrites a successful IPMI 1.5 Activate Session reply
// to carry the temporary session ID the request was sent with (and its
// AuthCode to match): go-ipmi sends the new permanent ID, which FreeIPMI
// rejects, retrying until its session times out.
func (b *BMC) fixActivateSession(co *core, pkt []byte, p v15, to *net.UDPAddr) []byte {
	if co == nil || p.authOff == 0 {
		return pkt
	}
	sess, err := co.bmc.V15Sessions.Get(p.sessionID)
	if err != nil || sess.TempSessionID == 0 || sess.User == nil {
		return pkt
	}
	temp := sess.TempSessionID
	out := append([]byte(nil), pkt...)
	binary.LittleEndian.PutUint32(out[9:13], temp)
	code := handlers.GenV15AuthCode(sess.User.PasswordV15Padded(), bmc.V15AuthType(p.authType), temp, p.msg, p.seq)
	copy(out[p.authOff:p.authOff+16], code)
	b.sessionStarted(false, p.sessionID, to)
	return out
}

// corrupt truncates or scrambles a reply.
func (b *BMC) corrupt(data []byte) []byte {
	out := append([]byte(nil), data...)
	b.rngMu.Lock()
	r := b.rand()
	mode := r.IntN(3)
	switch {
	case mode == 0 && len(out) > 1:
		out = out[:1+r.IntN(len(out)-1)]
	default:
		flips := 1 + r.IntN(3)
		for i := 0; i < flips && len(out) > 0; i++ {
			out[r.IntN(len(out))] ^= byte(1 + r.IntN(255))
		}
	}
	b.rngMu.Unlock()
	return out
}

// roll returns true with probability p, from the BMC's seeded source.
func (b *BMC) roll(p float64) bool {
	b.rngMu.Lock()
	v := b.rand().Float64()
	b.rngMu.Unlock()
	return v < p
}

// rand returns the BMC's random source, seeded by fleet seed, BMC index and
// how many times the faults were set: a run is reproducible. b.rngMu held.
func (b *BMC) rand() *rand.Rand {
	if b.rng == nil {
		b.rng = rand.New(rand.NewPCG(b.f.seed, uint64(b.index)<<20|b.rngN))
	}
	return b.rng
}

// ---------------------------------------------------------------------------
// Session and request tracking

func (b *BMC) track() *tracking {
	if b.tr == nil {
		b.tr = &tracking{}
	}
	return b.tr
}

func (b *BMC) trackInflight(co *core, pkt []byte, from *net.UDPAddr) {
	key := b.requestKey(co, pkt, from)
	now := time.Now()
	expiry := inflightExpiry + time.Duration(b.faultSet().Slow)
	b.trMu.Lock()
	t := b.track()
	if t.pending == nil {
		t.pending = make(map[*net.UDPAddr]pendingCopy, 2)
		t.requests = make(map[reqKey]int, 2)
	}
	for a, p := range t.pending {
		if now.Sub(p.at) > expiry {
			t.dropCopy(a, p.key)
		}
	}
	if len(t.pending) < maxTracked {
		t.pending[from] = pendingCopy{key, now}
		t.requests[key]++
	}
	n := int64(len(t.requests))
	b.trMu.Unlock()
	b.ctr.inflight.Store(n)
	storeMax(&b.ctr.maxInflight, n)
}

// dropCopy forgets one datagram of a request; the request leaves the
// count when its last copy is answered or retired. b.trMu held.
func (t *tracking) dropCopy(a *net.UDPAddr, key reqKey) {
	delete(t.pending, a)
	if t.requests[key] <= 1 {
		delete(t.requests, key)
	} else {
		t.requests[key]--
	}
}

func (b *BMC) untrackInflight(to *net.UDPAddr) {
	b.trMu.Lock()
	if b.tr != nil && b.tr.pending != nil {
		if p, ok := b.tr.pending[to]; ok {
			b.tr.dropCopy(to, p.key)
			b.ctr.inflight.Store(int64(len(b.tr.requests)))
		}
	}
	b.trMu.Unlock()
}

func (b *BMC) noteRAKP3(from *net.UDPAddr, tag uint8, id uint32) {
	now := time.Now()
	b.trMu.Lock()
	t := b.track()
	if t.rakp == nil {
		t.rakp = make(map[rakpKey]rakpEntry, 1)
	}
	for k, e := range t.rakp {
		if now.Sub(e.at) > 30*time.Second {
			delete(t.rakp, k)
		}
	}
	if len(t.rakp) < maxTracked {
		t.rakp[rakpKey{from.AddrPort(), tag}] = rakpEntry{id, now}
	}
	b.trMu.Unlock()
}

func (b *BMC) takeRAKP3(to *net.UDPAddr, tag uint8) (uint32, bool) {
	b.trMu.Lock()
	defer b.trMu.Unlock()
	if b.tr == nil {
		return 0, false
	}
	k := rakpKey{to.AddrPort(), tag}
	e, ok := b.tr.rakp[k]
	delete(b.tr.rakp, k)
	return e.id, ok
}

func clientIP(a *net.UDPAddr) netip.Addr {
	ip := a.AddrPort().Addr()
	return ip.Unmap()
}

func (b *BMC) sessionStarted(v2 bool, id uint32, to *net.UDPAddr) {
	ip := clientIP(to)
	b.trMu.Lock()
	t := b.track()
	m := &t.v15
	if v2 {
		m = &t.v2
	}
	if *m == nil {
		*m = make(map[uint32]netip.Addr, 1)
	}
	if _, dup := (*m)[id]; dup {
		b.trMu.Unlock()
		return
	}
	(*m)[id] = ip
	if t.consoles == nil {
		t.consoles = make(map[uint32]netip.AddrPort, 1)
	}
	t.consoles[id] = to.AddrPort()
	if t.perClient == nil {
		t.perClient = make(map[netip.Addr]int, 1)
	}
	t.perClient[ip]++
	t.countSource(ip)
	pc := int64(t.perClient[ip])
	open := int64(len(t.v2) + len(t.v15))
	b.trMu.Unlock()
	b.ctr.opened.Add(1)
	b.ctr.open.Store(open)
	storeMax(&b.ctr.maxOpen, open)
	storeMax(&b.ctr.maxPerClient, pc)
}

// sessionEnded records the end of an open session (unknown IDs, such as
// handshakes that never completed, are ignored).
func (b *BMC) sessionEnded(v2 bool, id uint32) {
	b.trMu.Lock()
	defer b.trMu.Unlock()
	b.endLocked(v2, id)
}

func (b *BMC) endLocked(v2 bool, id uint32) {
	t := b.tr
	if t == nil {
		return
	}
	m := t.v15
	if v2 {
		m = t.v2
	}
	ip, ok := m[id]
	if !ok {
		return
	}
	delete(m, id)
	delete(t.consoles, id)
	if t.perClient[ip] <= 1 {
		delete(t.perClient, ip)
	} else {
		t.perClient[ip]--
	}
	b.ctr.closed.Add(1)
	b.ctr.open.Store(int64(len(t.v2) + len(t.v15)))
}

// dropSessions ends every tracked session (the firmware restarted).
// b.mu held.
func (b *BMC) dropSessions() {
	b.trMu.Lock()
	defer b.trMu.Unlock()
	if b.tr == nil {
		return
	}
	for id := range b.tr.v2 {
		b.endLocked(true, id)
	}
	for id := range b.tr.v15 {
		b.endLocked(false, id)
	}
}

// reconcile ends tracked IPMI 1.5 sessions the firmware timed out (its v1.5
// table has no removal hook).
func (b *BMC) reconcile() {
	co := b.cur.Load()
	if co == nil {
		return
	}
	b.trMu.Lock()
	defer b.trMu.Unlock()
	if b.tr == nil {
		return
	}
	for id := range b.tr.v15 {
		if _, err := co.bmc.V15Sessions.Get(id); err != nil {
			b.endLocked(false, id)
		}
	}
}

// sessionsInUse counts open sessions of both kinds.
func (b *BMC) sessionsInUse(co *core) int {
	n := 0
	b.trMu.Lock()
	if b.tr != nil {
		n = len(b.tr.v2)
	}
	b.trMu.Unlock()
	if co != nil {
		n += co.bmc.V15Sessions.CountActiveSessions()
	}
	return n
}

// v15HoldsSlots reports whether IPMI 1.5 sessions take the slots an RMCP+
// session would need (the session limit covers both kinds).
func (b *BMC) v15HoldsSlots(co *core) bool {
	if co == nil {
		return false
	}
	if co.bmc.V15Sessions.CountActiveSessions() == 0 {
		return false
	}
	return b.sessionsInUse(co) >= b.f.slots
}
