package sim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/bougou/go-ipmi/pkg/handlers"
)

// Defaults for a fleet.
const (
	DefaultBaseAddr     = "127.1.0.1" // per-address mode: one loopback address per BMC, port 623
	DefaultPortModeAddr = "127.0.0.1" // base-port mode: every BMC on this address
	DefaultSessionSlots = 4
	DefaultCount        = 100
	IPMIPort            = 623
	// MaxSessionSlots bounds Config.SessionSlots (Get Session Info reports
	// the table size in 6 bits).
	MaxSessionSlots = 63
)

// ErrClosed is returned by operations on a closed fleet.
var ErrClosed = errors.New("sim: the fleet is closed")

// ErrUnknown is wrapped by errors about a BMC or enclosure name the fleet
// does not have.
var ErrUnknown = errors.New("no such BMC or enclosure")

// Accounts selects the optional accounts besides admin (all share the
// fleet password).
type Accounts struct {
	// Operator adds an "operator" account with OPERATOR privilege.
	Operator bool `json:"operator,omitempty" yaml:"operator,omitempty"`
	// User adds a "user" account with USER privilege.
	User bool `json:"user,omitempty" yaml:"user,omitempty"`
}

// EnclosureConfig describes one enclosure: its manager (an IPMI endpoint
// named Name) fronts Blades blade BMCs in slots 1..Blades.
type EnclosureConfig struct {
	Name   string `json:"name" yaml:"name"`
	Blades int    `json:"blades" yaml:"blades"`
	// Down starts the enclosure manager down (it and its blades silent).
	Down bool `json:"down,omitempty" yaml:"down,omitempty"`
}

// Config describes a fleet. The zero value of each field means its
// default; see docs/simulator.md for the YAML form.
type Config struct {
	// Count is the number of server BMCs, blades included (default 100).
	Count int `json:"count" yaml:"count"`
	// Seed fixes every identity (GUIDs, vendors, sensors, SEL) and the
	// random sources of rate faults.
	Seed uint64 `json:"seed" yaml:"seed"`
	// Password is the password of every account. Empty: read PasswordFile,
	// or generate a random one.
	Password string `json:"-" yaml:"password,omitempty"`
	// PasswordFile names a file holding the password (first line).
	PasswordFile string `json:"password_file,omitempty" yaml:"password_file,omitempty"`
	// BaseAddr is the first BMC's address. Without BasePort every BMC gets
	// its own loopback address (default 127.1.0.1, then .2, ...; host parts
	// .0 and .255 are skipped) on port 623, which needs root. With BasePort
	// every BMC shares this address (default 127.0.0.1, or ::1).
	BaseAddr string `json:"base_addr,omitempty" yaml:"base_addr,omitempty"`
	// BasePort, when set, puts the BMCs on consecutive ports from it.
	BasePort int `json:"base_port,omitempty" yaml:"base_port,omitempty"`
	// SessionSlots is each BMC's session table size (default 4).
	SessionSlots int `json:"session_slots,omitempty" yaml:"session_slots,omitempty"`
	// Accounts adds the optional operator and user accounts.
	Accounts Accounts `json:"accounts,omitempty" yaml:"accounts,omitempty"`
	// Vendors is the vendor/firmware mix (default DefaultVendors).
	Vendors []Vendor `json:"vendors,omitempty" yaml:"vendors,omitempty"`
	// Enclosures take their blades from the first BMCs, in order.
	Enclosures []EnclosureConfig `json:"enclosures,omitempty" yaml:"enclosures,omitempty"`
	// Faults to inject at start, by BMC (or enclosure manager) name.
	Faults map[string]Faults `json:"faults,omitempty" yaml:"faults,omitempty"`
	// Swaps lists pairs of BMCs that start with their addresses swapped.
	Swaps [][]string `json:"swaps,omitempty" yaml:"swaps,omitempty"`
	// Redfish makes every server BMC also serve Redfish over HTTPS on its
	// registered address, and every enclosure manager its Chassis (the
	// enclosure with Links.Contains, a Blade chassis per slot; port:
	// after the servers' with RedfishBasePort): TCP 443 with one
	// address per BMC, else the TCP port of the same number as its IPMI
	// UDP port (or RedfishBasePort + index). See docs/redfish.md.
	Redfish bool `json:"redfish,omitempty" yaml:"redfish,omitempty"`
	// RedfishBasePort, with Redfish, puts the Redfish services on
	// consecutive TCP ports from it instead.
	RedfishBasePort int `json:"redfish_base_port,omitempty" yaml:"redfish_base_port,omitempty"`
}

// Fleet is a running set of simulated BMCs and enclosure managers in one
// process. Create it with [New]; stop it with [Fleet.Close].
type Fleet struct {
	seed     uint64
	password string
	slots    int
	accounts Accounts
	perAddr  bool
	reg      *handlers.Registry

	ctx    context.Context
	cancel context.CancelFunc
	skew   atomic.Int64 // ns added to every BMC's clock (tests)

	all        []*BMC // servers first, then enclosure managers
	servers    []*BMC
	byName     map[string]*BMC
	byHome     map[netip.AddrPort]*BMC
	enclosures []*Enclosure
	enclByName map[string]*Enclosure

	swapMu sync.Mutex
	closed atomic.Bool

	redfish bool
}

// Enclosure is a chassis of blades behind an enclosure manager.
type Enclosure struct {
	name   string
	em     *BMC
	blades []*BMC
	down   atomic.Bool
}

// Name is the enclosure's (and its manager's) name.
func (e *Enclosure) Name() string { return e.name }

// Manager is the enclosure manager endpoint.
func (e *Enclosure) Manager() *BMC { return e.em }

// Blades are the blade BMCs, by slot (Blades()[0] is slot 1).
func (e *Enclosure) Blades() []*BMC { return append([]*BMC(nil), e.blades...) }

// Down reports whether the enclosure manager is down (it and its blades
// are silent).
func (e *Enclosure) Down() bool { return e.down.Load() }

// New validates cfg, binds every BMC's socket and starts serving. On error
// nothing is left running.
func New(cfg Config) (*Fleet, error) {
	pw, err := resolvePassword(cfg)
	if err != nil {
		return nil, err
	}
	plan, err := validate(&cfg)
	if err != nil {
		return nil, err
	}
	f := &Fleet{
		seed:       cfg.Seed,
		password:   pw,
		slots:      cfg.SessionSlots,
		accounts:   cfg.Accounts,
		perAddr:    plan.perAddr,
		reg:        newRegistry(),
		byName:     map[string]*BMC{},
		byHome:     map[netip.AddrPort]*BMC{},
		enclByName: map[string]*Enclosure{},
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	vendors := cfg.Vendors
	if len(vendors) == 0 {
		vendors = DefaultVendors
	}

	healthy := &Faults{}
	newBMC := func(i int, name string, kind Kind) *BMC {
		b := &BMC{f: f, index: i, name: name, kind: kind, home: plan.addrs[i]}
		b.addr.Store(net.UDPAddrFromAddrPort(b.home))
		b.faults.Store(healthy)
		salt := uint64(saltGUID)
		if kind == KindEnclosureManager {
			salt = saltEMGUID
		}
		b.origGUID = deriveGUID(f.seed, uint64(i), salt)
		b.curGUID = b.origGUID
		b.vendor = pickVendor(vendors, f.seed, uint64(i))
		b.power.Store(kind == KindEnclosureManager || mix(f.seed, uint64(i), saltPower)%10 != 0)
		f.all = append(f.all, b)
		f.byName[name] = b
		f.byHome[b.home] = b
		return b
	}
	for i := 0; i < cfg.Count; i++ {
		f.servers = append(f.servers, newBMC(i, bmcName(i), KindBMC))
	}
	next := 0
	for j, ec := range cfg.Enclosures {
		e := &Enclosure{name: ec.Name}
		e.down.Store(ec.Down)
		e.em = newBMC(cfg.Count+j, ec.Name, KindEnclosureManager)
		e.em.encl = e
		for s := 1; s <= ec.Blades; s++ {
			b := f.servers[next]
			next++
			b.encl, b.slot = e, s
			e.blades = append(e.blades, b)
		}
		f.enclosures = append(f.enclosures, e)
		f.enclByName[e.name] = e
	}
	for name, fs := range cfg.Faults {
		b := f.byName[name]
		b.faults.Store(&fs)
		if fs.GUIDReplaced {
			b.guidGen = 1
			b.curGUID = deriveGUID(f.seed, uint64(b.index), saltReplacedGUID+1)
		}
	}
	// Start-time swaps: exchange addresses before anything binds.
	for _, p := range cfg.Swaps {
		a, b := f.byName[p[0]], f.byName[p[1]]
		aa, ba := a.addr.Load(), b.addr.Load()
		a.addr.Store(ba)
		b.addr.Store(aa)
	}

	for _, b := range f.all {
		var sock *net.UDPConn
		if !b.faultSet().PortClosed {
			sock, err = bindUDP(b.currentAddr(), false)
			if err != nil {
				f.Close()
				return nil, bindError(b, err, cfg.BasePort)
			}
		}
		b.mu.Lock()
		b.startCore(sock)
		b.mu.Unlock()
	}
	if cfg.Redfish {
		f.redfish = true
		home := make(map[*BMC]netip.AddrPort, len(f.servers))
		for i, b := range f.servers {
			port := 443
			switch {
			case cfg.RedfishBasePort > 0:
				port = cfg.RedfishBasePort + i
			case !plan.perAddr:
				port = int(b.home.Port())
			}
			home[b] = netip.AddrPortFrom(b.home.Addr(), uint16(port))
		}
		// Start-time swaps exchange the Redfish endpoints too.
		at := maps.Clone(home)
		for _, p := range cfg.Swaps {
			a, b := f.byName[p[0]], f.byName[p[1]]
			ha, okA := home[a]
			hb, okB := home[b]
			if okA && okB {
				at[a], at[b] = hb, ha
			}
		}
		for _, b := range f.servers {
			if err := b.startRedfish(home[b], at[b]); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: redfish: %w", b.name, err)
			}
		}
		// Enclosure managers serve their Chassis over Redfish too.
		for i, e := range f.enclosures {
			port := 443
			switch {
			case cfg.RedfishBasePort > 0:
				port = cfg.RedfishBasePort + len(f.servers) + i
			case !plan.perAddr:
				port = int(e.em.home.Port())
			}
			ap := netip.AddrPortFrom(e.em.home.Addr(), uint16(port))
			if err := e.em.startRedfish(ap, ap); err != nil {
				f.Close()
				return nil, fmt.Errorf("%s: redfish: %w", e.em.name, err)
			}
		}
	}
	go f.sweepSessions()
	return f, nil
}

func bmcName(i int) string { return fmt.Sprintf("bmc-%05d", i+1) }

// bindError explains a failed bind, with the usual remedy.
func bindError(b *BMC, err error, basePort int) error {
	addr := b.currentAddr().String()
	switch {
	case errors.Is(err, syscall.EACCES) && b.currentAddr().Port < 1024:
		return fmt.Errorf("%s: binding %s: permission denied: port %d needs root (or CAP_NET_BIND_SERVICE). "+
			"Run as root, or put every BMC on 127.0.0.1 with consecutive ports: --base-port 16230 (fleet file: base_port)",
			b.name, addr, b.currentAddr().Port)
	case errors.Is(err, syscall.EADDRINUSE):
		hint := "another simulator or BMC service is using it"
		if basePort > 0 {
			hint += "; pick another --base-port"
		}
		return fmt.Errorf("%s: binding %s: %w (%s)", b.name, addr, syscall.EADDRINUSE, hint)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return fmt.Errorf("%s: binding %s: address not available on this host (Linux routes all of 127.0.0.0/8 to lo; elsewhere add the aliases or use --base-port)", b.name, addr)
	case errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE):
		return fmt.Errorf("%s: binding %s: too many open files (each BMC needs one socket; raise the file descriptor limit or run fewer BMCs)", b.name, addr)
	}
	return fmt.Errorf("%s: binding %s: %w", b.name, addr, err)
}

// resolvePassword returns the fleet password: Config.Password, the first
// line of Config.PasswordFile, or a new random one.
func resolvePassword(cfg Config) (string, error) {
	pw := cfg.Password
	if pw == "" && cfg.PasswordFile != "" {
		data, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return "", fieldErr("password_file", "%v", err)
		}
		line, _, _ := strings.Cut(string(data), "\n")
		pw = strings.TrimRight(line, "\r")
		if pw == "" {
			return "", fieldErr("password_file", "%s: the first line is empty", cfg.PasswordFile)
		}
	}
	if pw == "" {
		return RandomPassword(), nil
	}
	if err := checkPassword(pw); err != nil {
		field := "password"
		if cfg.Password == "" {
			field = "password_file"
		}
		return "", fieldErr(field, "%v", err)
	}
	return pw, nil
}

func checkPassword(pw string) error {
	if len(pw) > 20 {
		return fmt.Errorf("is %d bytes; IPMI passwords are at most 20 bytes", len(pw))
	}
	for _, c := range []byte(pw) {
		if c < 0x20 || c == 0x7F {
			return errors.New("contains a control character")
		}
	}
	return nil
}

// RandomPassword returns a 16-character alphanumeric password (16 bytes is
// the longest that also works over IPMI 1.5).
func RandomPassword() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	out := make([]byte, len(raw))
	for i, c := range raw {
		out[i] = alphabet[int(c)%len(alphabet)]
	}
	return string(out)
}

// addrPlan is where each endpoint listens, by index.
type addrPlan struct {
	perAddr bool
	addrs   []netip.AddrPort
}

// validate checks cfg, fills in defaults and computes the address plan.
func validate(cfg *Config) (addrPlan, error) {
	var plan addrPlan
	if cfg.Count == 0 {
		cfg.Count = DefaultCount
	}
	if cfg.Count < 1 {
		return plan, fieldErr("count", "must be at least 1, got %d", cfg.Count)
	}
	if cfg.SessionSlots == 0 {
		cfg.SessionSlots = DefaultSessionSlots
	}
	if cfg.SessionSlots < 1 || cfg.SessionSlots > MaxSessionSlots {
		return plan, fieldErr("session_slots", "must be between 1 and %d, got %d", MaxSessionSlots, cfg.SessionSlots)
	}
	if cfg.BasePort < 0 || cfg.BasePort > 65535 {
		return plan, fieldErr("base_port", "must be a port number (1-65535), got %d", cfg.BasePort)
	}
	for i, v := range cfg.Vendors {
		if err := v.validate(fmt.Sprintf("vendors[%d].", i)); err != nil {
			return plan, err
		}
	}
	names := map[string]bool{}
	for i := 0; i < cfg.Count; i++ {
		names[bmcName(i)] = true
	}
	blades := 0
	for i, e := range cfg.Enclosures {
		field := fmt.Sprintf("enclosures[%d]", i)
		switch {
		case e.Name == "":
			return plan, fieldErr(field+".name", "missing (every enclosure needs a name)")
		case !validName(e.Name):
			return plan, fieldErr(field+".name", "%q may contain only letters, digits, '.', '_' and '-'", e.Name)
		case names[e.Name]:
			return plan, fieldErr(field+".name", "%q is already the name of a BMC or enclosure", e.Name)
		}
		names[e.Name] = true
		if e.Blades < 1 {
			return plan, fieldErr(field+".blades", "must be at least 1, got %d", e.Blades)
		}
		blades += e.Blades
	}
	if blades > cfg.Count {
		return plan, fieldErr("enclosures", "hold %d blades in all, but count is %d (blades are taken from the fleet's BMCs)", blades, cfg.Count)
	}
	for name, fs := range cfg.Faults {
		if !names[name] {
			return plan, fieldErr("faults."+name, "no BMC or enclosure manager is named %q (names run bmc-00001..%s)", name, bmcName(cfg.Count-1))
		}
		if err := fs.Validate("faults." + name + "."); err != nil {
			return plan, err
		}
		if fs.EMLink && !isBlade(name, blades) {
			return plan, fieldErr("faults."+name+".em_link", "%s is not a blade: only a blade's BMC has a link to an enclosure manager", name)
		}
	}
	swapped := map[string]bool{}
	for i, p := range cfg.Swaps {
		field := fmt.Sprintf("swaps[%d]", i)
		if len(p) != 2 {
			return plan, fieldErr(field, "must name exactly two BMCs, got %d", len(p))
		}
		for _, n := range p {
			if !names[n] {
				return plan, fieldErr(field, "no BMC is named %q", n)
			}
			if swapped[n] {
				return plan, fieldErr(field, "%q is already in another swap", n)
			}
			swapped[n] = true
		}
		if p[0] == p[1] {
			return plan, fieldErr(field, "swaps %q with itself", p[0])
		}
	}
	n := cfg.Count + len(cfg.Enclosures)
	var err error
	plan, err = planAddrs(cfg.BaseAddr, cfg.BasePort, n)
	return plan, err
}

// isBlade: blades are the first BMCs of the fleet, in order.
func isBlade(name string, blades int) bool {
	for i := 0; i < blades; i++ {
		if bmcName(i) == name {
			return true
		}
	}
	return false
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// planAddrs lays out n endpoints: one loopback address each on port 623,
// or (basePort > 0) one address with consecutive ports.
func planAddrs(base string, basePort, n int) (addrPlan, error) {
	plan := addrPlan{perAddr: basePort == 0, addrs: make([]netip.AddrPort, 0, n)}
	if base == "" {
		base = DefaultBaseAddr
		if basePort > 0 {
			base = DefaultPortModeAddr
		}
	}
	a, err := netip.ParseAddr(base)
	if err != nil {
		return plan, fieldErr("base_addr", "%q is not an IP address", base)
	}
	a = a.Unmap()
	if !a.IsLoopback() || a.Zone() != "" {
		return plan, fieldErr("base_addr", "%s is not a loopback address (the simulator binds only 127.0.0.0/8 or ::1)", a)
	}
	if basePort > 0 {
		if basePort+n-1 > 65535 {
			return plan, fieldErr("base_port", "%d endpoints from port %d run past 65535", n, basePort)
		}
		for i := 0; i < n; i++ {
			plan.addrs = append(plan.addrs, netip.AddrPortFrom(a, uint16(basePort+i)))
		}
		return plan, nil
	}
	if !a.Is4() {
		return plan, fieldErr("base_addr", "one address per BMC needs an IPv4 127.x.y.z base; for ::1 use a base port")
	}
	v := a.As4()
	u := uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
	const last = 127<<24 | 255<<16 | 255<<8 | 254
	for len(plan.addrs) < n {
		if u > last {
			return plan, fieldErr("base_addr", "%d endpoints from %s run past 127.255.255.254", n, a)
		}
		if host := u & 0xFF; host != 0 && host != 255 && u != 127<<24|1 {
			plan.addrs = append(plan.addrs, netip.AddrPortFrom(netip.AddrFrom4([4]byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}), IPMIPort))
		}
		u++
	}
	return plan, nil
}

// Close stops every BMC and releases its socket.
func (f *Fleet) Close() error {
	if f.closed.Swap(true) {
		return nil
	}
	f.cancel()
	for _, b := range f.all {
		b.mu.Lock()
		b.stopCore()
		b.mu.Unlock()
		if b.rf != nil {
			b.rf.close()
		}
	}
	return nil
}

// Password is the fleet password (every account's).
func (f *Fleet) Password() string { return f.password }

// Seed is the fleet seed.
func (f *Fleet) Seed() uint64 { return f.seed }

// SessionSlots is each BMC's session table size.
func (f *Fleet) SessionSlots() int { return f.slots }

// BMCs returns the server BMCs (blades included), in order.
func (f *Fleet) BMCs() []*BMC { return append([]*BMC(nil), f.servers...) }

// Endpoints returns every IPMI endpoint: the server BMCs, then the
// enclosure managers.
func (f *Fleet) Endpoints() []*BMC { return append([]*BMC(nil), f.all...) }

// Enclosures returns the enclosures, in order.
func (f *Fleet) Enclosures() []*Enclosure { return append([]*Enclosure(nil), f.enclosures...) }

// BMC returns the BMC or enclosure manager with that name.
func (f *Fleet) BMC(name string) (*BMC, bool) {
	b, ok := f.byName[name]
	return b, ok
}

// Enclosure returns the enclosure with that name.
func (f *Fleet) Enclosure(name string) (*Enclosure, bool) {
	e, ok := f.enclByName[name]
	return e, ok
}

func (f *Fleet) lookup(name string) (*BMC, error) {
	if b, ok := f.byName[name]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknown, name)
}

// AddrRange describes where the fleet listens, for humans:
// "127.1.0.1 - 127.1.0.103 port 623" or "127.0.0.1 ports 16230-16332".
func (f *Fleet) AddrRange() string {
	first, last := f.all[0].home, f.all[len(f.all)-1].home
	if f.perAddr {
		return fmt.Sprintf("%s - %s port %d", first.Addr(), last.Addr(), first.Port())
	}
	return fmt.Sprintf("%s ports %d-%d", first.Addr(), first.Port(), last.Port())
}

// SetFaults replaces the faults of the named BMC or enclosure manager.
func (f *Fleet) SetFaults(name string, faults Faults) error {
	b, err := f.lookup(name)
	if err != nil {
		return err
	}
	return b.setFaults(faults)
}

// ClearFaults removes every fault from the named BMC.
func (f *Fleet) ClearFaults(name string) error { return f.SetFaults(name, Faults{}) }

// SetPower switches the named BMC's chassis power.
func (f *Fleet) SetPower(name string, on bool) error {
	b, err := f.lookup(name)
	if err != nil {
		return err
	}
	b.SetPower(on)
	return nil
}

// SetEnclosureDown takes an enclosure manager down (it and every blade
// behind it go silent) or brings it back.
func (f *Fleet) SetEnclosureDown(name string, down bool) error {
	e, ok := f.enclByName[name]
	if !ok {
		return fmt.Errorf("%w: no enclosure named %q", ErrUnknown, name)
	}
	e.down.Store(down)
	return nil
}

// Swap exchanges the addresses of two BMCs: each answers on the other's
// address (an IP reuse or a re-cabling). Swapping the same pair again
// restores them.
func (f *Fleet) Swap(a, b string) error {
	x, err := f.lookup(a)
	if err != nil {
		return err
	}
	y, err := f.lookup(b)
	if err != nil {
		return err
	}
	if x == y {
		return fieldErr("b", "is the same BMC as a (%q)", a)
	}
	f.swapMu.Lock()
	defer f.swapMu.Unlock()
	first, second := x, y
	if first.index > second.index {
		first, second = second, first
	}
	first.mu.Lock()
	defer first.mu.Unlock()
	second.mu.Lock()
	defer second.mu.Unlock()
	if f.closed.Load() {
		return ErrClosed
	}

	// Release both addresses, then take the other's.
	for _, m := range []*BMC{x, y} {
		if m.core != nil {
			m.core.conn.setSocket(nil)
		}
	}
	ax, ay := x.addr.Load(), y.addr.Load()
	x.addr.Store(ay)
	y.addr.Store(ax)
	var errs []error
	for _, m := range []*BMC{x, y} {
		if m.core == nil || m.faultSet().PortClosed {
			continue
		}
		sock, err := bindUDP(m.currentAddr(), true)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: binding %s: %w", m.name, m.currentAddr(), err))
			continue
		}
		m.core.conn.setSocket(sock)
	}
	// Redfish: each serves at the other's endpoint too.
	if x.rf != nil && y.rf != nil {
		x.rf.release()
		y.rf.release()
		x.rf.mu.Lock()
		y.rf.mu.Lock()
		x.rf.addr, y.rf.addr = y.rf.addr, x.rf.addr
		y.rf.mu.Unlock()
		x.rf.mu.Unlock()
		for _, m := range []*BMC{x, y} {
			if m.faultSet().PortClosed {
				continue
			}
			if err := m.rf.listen(); err != nil {
				errs = append(errs, fmt.Errorf("%s: redfish on %s: %w", m.name, m.RedfishAddr(), err))
			}
		}
	}
	return errors.Join(errs...)
}
