// Package inventory reads and writes fleet inventories: the machines to
// check, their expected identity and how to reach their BMC. Formats are
// YAML and CSV; see docs/inventory.md.
package inventory

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lightsout/lightsout/internal/protocol"
	"github.com/lightsout/lightsout/internal/redfish"
)

// Machine is one managed server's out-of-band entry.
type Machine struct {
	Name string `yaml:"name" json:"name"`
	// GUID is the expected System GUID as the operator wrote it (any layout);
	// empty means "not pinned yet".
	GUID     string `yaml:"guid,omitempty" json:"guid,omitempty"`
	Address  string `yaml:"address" json:"address"`
	Port     int    `yaml:"port,omitempty" json:"port,omitempty"`
	User     string `yaml:"user,omitempty" json:"user,omitempty"`
	Protocol string `yaml:"protocol,omitempty" json:"protocol,omitempty"` // ipmi (default) | redfish
	// At most one of PasswordFile / PasswordEnv names where the password is
	// (neither: the caller supplies it); the inventory never holds the
	// password itself. See Machine.Password.
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	PasswordEnv  string `yaml:"password_env,omitempty" json:"password_env,omitempty"`
	// CipherSuite pins an RMCP+ cipher suite; 0 means automatic (17, then 3).
	CipherSuite int `yaml:"cipher_suite,omitempty" json:"cipher_suite,omitempty"`
	// CipherSuites is the allow-list the session negotiates from, in order
	// of preference (e.g. [17, 3]); nil means the default (17, then 3).
	// Suite 0 is never allowed. See docs/interop.md.
	CipherSuites []string `yaml:"cipher_suites,omitempty,flow" json:"cipher_suites,omitempty"`
	// Privilege is the IPMI privilege level to request: PrivilegeUser,
	// PrivilegeOperator or PrivilegeAdministrator; empty means
	// administrator (see EffectivePrivilege). Parse stores the canonical
	// lowercase spelling whatever the file wrote (ADMIN, Operator, ...).
	Privilege string `yaml:"privilege,omitempty" json:"privilege,omitempty"`
	// RedfishAuth forces how a Redfish BMC is logged in to: "session"
	// (X-Auth-Token) or "basic" (HTTP Basic on every request); empty or
	// "auto" lets lightsout choose as the service offers (a session when
	// the service root links a SessionService, else Basic). Parse stores
	// it lowercase. Ignored for IPMI.
	RedfishAuth string `yaml:"redfish_auth,omitempty" json:"redfish_auth,omitempty"`
	// Enclosure names the chassis or rack; when it equals the name of one
	// of Inventory.Enclosures, Slot is checked against that enclosure.
	Enclosure string `yaml:"enclosure,omitempty" json:"enclosure,omitempty"`
	Slot      int    `yaml:"slot,omitempty" json:"slot,omitempty"`
	// Group is an operator-chosen group name (name syntax, not unique).
	Group string `yaml:"group,omitempty" json:"group,omitempty"`
	// Role is free text ("compute", "db primary", ...).
	Role string `yaml:"role,omitempty" json:"role,omitempty"`
	// Tags are free-text labels, in file order, each unique within the
	// machine and without ';' (the CSV separator); nil when there are none.
	Tags []string `yaml:"tags,omitempty,flow" json:"tags,omitempty"`
	// Spare marks a machine kept in reserve.
	Spare bool `yaml:"spare,omitempty" json:"spare,omitempty"`
	// Zone is where the machine's BMC is reachable from: only servers
	// started with --zone ZONE check it (docs/scale-out.md); empty: the
	// zone "default".
	Zone string `yaml:"zone,omitempty" json:"zone,omitempty"`

	// Line is where the machine was defined in its source file (1-based),
	// for error messages; 0 when built in code.
	Line int `yaml:"-" json:"-"`
}

// Enclosure is an enclosure manager (a chassis' CMC): an out-of-band
// endpoint of its own in front of Slots blade slots. Machines name it in
// their Enclosure field.
type Enclosure struct {
	Name     string `yaml:"name" json:"name"`
	Address  string `yaml:"address" json:"address"`
	Port     int    `yaml:"port,omitempty" json:"port,omitempty"`
	User     string `yaml:"user,omitempty" json:"user,omitempty"`
	Protocol string `yaml:"protocol,omitempty" json:"protocol,omitempty"` // ipmi (default), or redfish for kind redfish
	// At most one of PasswordFile / PasswordEnv, as for a Machine; see
	// Enclosure.Password.
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	PasswordEnv  string `yaml:"password_env,omitempty" json:"password_env,omitempty"`
	// Slots is the number of blade slots, 1..MaxSlots; machines in the
	// enclosure use slots 1..Slots.
	Slots int `yaml:"slots" json:"slots"`
	// Kind is how the diagnosis asks the enclosure manager about a blade:
	// "ipmb" — standard IPMI bridging (Send Message) to the blade's
	// controller on the manager's IPMB, as ATCA shelf managers and
	// OpenIPMI's ipmi_sim answer — or "oem" (the default): lightsout's own
	// NetFn 0x30 enclosure commands, which `lightsout sim` speaks — or
	// "redfish": a Redfish enclosure manager's Chassis (protocol redfish).
	Kind string `yaml:"kind,omitempty" json:"kind,omitempty"`
	// IPMB is a kind-ipmb enclosure's slot-to-address rule: "0x82+2"
	// (slot 1 at 0x82, each next slot 2 further; the default) or one
	// address per slot from slot 1, "0x82,0x84,0x8a".
	IPMB string `yaml:"ipmb,omitempty" json:"ipmb,omitempty"`

	// Line is where the enclosure was defined in its source file (1-based);
	// 0 when built in code.
	Line int `yaml:"-" json:"-"`
}

// Inventory is an ordered list of machines and the enclosure managers
// they sit behind.
type Inventory struct {
	// Enclosures are the enclosure managers the file defines. Machines may
	// also name enclosures not listed here. CSV carries none.
	Enclosures []Enclosure `yaml:"enclosures,omitempty" json:"enclosures,omitempty"`
	Machines   []Machine   `yaml:"machines" json:"machines"`
	// Dir is the directory relative paths (password_file) resolve against.
	Dir string `yaml:"-" json:"-"`
}

// DefaultPort is the RMCP+ port an IPMI machine uses when its port is 0
// (a Redfish machine's is protocol.RedfishPort: EffectivePort).
const DefaultPort = protocol.IPMIPort

// Protocol names accepted in Machine.Protocol. Empty means ProtocolIPMI.
// Enclosure.Protocol accepts only ProtocolIPMI (or empty) for now.
const (
	ProtocolIPMI    = string(protocol.IPMI)
	ProtocolRedfish = string(protocol.Redfish)
)

// Enclosure kinds: how the diagnosis asks an enclosure manager about a
// blade (Enclosure.Kind).
const (
	KindOEM  = "oem"
	KindIPMB = "ipmb"
	// KindRedfish: a Redfish enclosure manager, asked through its Chassis
	// (the enclosure's Links.Contains, each blade's PowerState, Status and
	// LocationIndicatorActive); its protocol is redfish.
	KindRedfish = "redfish"
)

// Privilege levels, in the canonical spelling Machine.Privilege holds.
// Empty means PrivilegeAdministrator.
const (
	PrivilegeUser          = "user"
	PrivilegeOperator      = "operator"
	PrivilegeAdministrator = "administrator"
)

// MaxSlots is the most blade slots an enclosure may have.
const MaxSlots = 64

// ParsePrivilege reads a privilege level the way ipmitool's -L does, case
// insensitively: user, operator, administrator, or admin. It returns the
// canonical spelling (PrivilegeUser, ...) and true, or "" and false. The
// empty string is PrivilegeAdministrator (the default). The result is
// accepted by ipmi.ParsePrivilege.
func ParsePrivilege(s string) (string, bool) {
	switch strings.ToLower(s) {
	case "user":
		return PrivilegeUser, true
	case "operator":
		return PrivilegeOperator, true
	case "administrator", "admin", "":
		return PrivilegeAdministrator, true
	}
	return "", false
}

// HostPort is the BMC's address joined with its port (its protocol's
// default when Port is 0), ready for net.Dial.
func (m Machine) HostPort() string {
	return net.JoinHostPort(m.Address, strconv.Itoa(m.EffectivePort()))
}

// EffectivePort is Port, or the protocol's default port when Port is 0
// (623 for IPMI, 443 for Redfish).
func (m Machine) EffectivePort() int {
	return protocol.Protocol(m.EffectiveProtocol()).Port(m.Port)
}

// EffectiveProtocol is Protocol, or ProtocolIPMI when Protocol is empty.
func (m Machine) EffectiveProtocol() string {
	if m.Protocol == "" {
		return ProtocolIPMI
	}
	return m.Protocol
}

// EffectivePrivilege is the canonical spelling of Privilege, or
// PrivilegeAdministrator when Privilege is empty. For a privilege that
// does not validate it returns Privilege unchanged.
func (m Machine) EffectivePrivilege() string {
	if p, ok := ParsePrivilege(m.Privilege); ok {
		return p
	}
	return m.Privilege
}

// HostPort is the enclosure manager's address joined with its port (its
// protocol's default when Port is 0), ready for net.Dial.
func (e Enclosure) HostPort() string {
	return net.JoinHostPort(e.Address, strconv.Itoa(e.EffectivePort()))
}

// EffectivePort is Port, or the protocol's default port when Port is 0.
func (e Enclosure) EffectivePort() int {
	return protocol.Protocol(e.EffectiveProtocol()).Port(e.Port)
}

// EffectiveProtocol is Protocol, or ProtocolIPMI when Protocol is empty.
func (e Enclosure) EffectiveProtocol() string {
	if e.Protocol == "" {
		if e.Kind == KindRedfish {
			return ProtocolRedfish
		}
		return ProtocolIPMI
	}
	return e.Protocol
}

// Validate checks every enclosure and machine against the rules [Parse]
// applies, including the cross-checks between them (a machine's slot
// within its enclosure's slots, one machine per enclosure slot), and
// returns [Errors] (positioned by Line when set) or nil.
func (inv *Inventory) Validate() error {
	c := &collector{}
	encs := make([]*encEntry, len(inv.Enclosures))
	for i, e := range inv.Enclosures {
		encs[i] = &encEntry{e: e, index: i + 1, meta: newMeta()}
	}
	entries := make([]*entry, len(inv.Machines))
	for i, m := range inv.Machines {
		entries[i] = &entry{m: m, index: i + 1, meta: newMeta()}
	}
	validateAll(c, entries, encs)
	return c.err()
}

// Format is an inventory file format.
type Format int

// The supported formats. The zero Format is invalid.
const (
	YAML Format = iota + 1
	CSV
)

func (f Format) String() string {
	switch f {
	case YAML:
		return "YAML"
	case CSV:
		return "CSV"
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// FormatFromPath picks the format from the file extension (case
// insensitive): .yaml or .yml is YAML, .csv is CSV.
func FormatFromPath(path string) (Format, error) {
	ext := filepath.Ext(path)
	switch strings.ToLower(ext) {
	case ".yaml", ".yml":
		return YAML, nil
	case ".csv":
		return CSV, nil
	case "":
		return 0, fmt.Errorf("inventory %s: no file extension; want .yaml, .yml or .csv", path)
	}
	return 0, fmt.Errorf("inventory %s: unsupported extension %q; want .yaml, .yml or .csv", path, ext)
}

// Load reads the inventory at path, choosing the format by extension, and
// sets Dir to the file's directory (absolute when it can be resolved).
// Errors in the file's content are [Errors]; use errors.As to get at them.
func Load(path string) (*Inventory, error) {
	format, err := FormatFromPath(path)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	defer f.Close()
	inv, err := Parse(f, format, path)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	inv.Dir = dir
	return inv, nil
}

// Parse reads an inventory in the given format. source names the input in
// error messages (usually the file path). Parsing is all-or-nothing: on any
// problem it returns a nil inventory and [Errors] listing every problem
// found, each with its line. Dir is left empty.
func Parse(r io.Reader, format Format, source string) (*Inventory, error) {
	if format != YAML && format != CSV {
		return nil, fmt.Errorf("inventory: unsupported format %v", format)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", source, err)
	}
	return parseData(data, format, source, true)
}

// parseData is Parse on data already read. fast enables parseYAMLFast for
// YAML in the simple shape it reads (falling back to parseYAML otherwise);
// tests turn it off to compare the two.
func parseData(data []byte, format Format, source string, fast bool) (*Inventory, error) {
	c := &collector{source: source}
	var (
		entries []*entry
		encs    []*encEntry
	)
	func() {
		// The parsers below must not panic; if a dependency ever does on
		// hostile input, report it as an error rather than crash the caller.
		defer func() {
			if p := recover(); p != nil {
				c.add(0, "", "", "", fmt.Sprintf("cannot parse %v input: %v", format, p))
				entries, encs = nil, nil
			}
		}()
		if format == YAML {
			var ok bool
			if fast {
				entries, encs, ok = parseYAMLFast(data)
			}
			if !ok {
				entries, encs = parseYAML(c, data)
			}
		} else {
			entries = parseCSV(c, data)
		}
	}()
	validateAll(c, entries, encs)
	if err := c.err(); err != nil {
		return nil, err
	}
	inv := &Inventory{Machines: make([]Machine, 0, len(entries))}
	for _, e := range encs {
		inv.Enclosures = append(inv.Enclosures, e.e)
	}
	for _, e := range entries {
		inv.Machines = append(inv.Machines, canonical(e.m))
	}
	return inv, nil
}

// canonical is m with Privilege and RedfishAuth in their canonical
// spelling and no empty
// Tags slice, as Parse returns machines and the writers write them.
func canonical(m Machine) Machine {
	if m.Privilege != "" {
		if p, ok := ParsePrivilege(m.Privilege); ok {
			m.Privilege = p
		}
	}
	if m.RedfishAuth != "" {
		if a, err := redfish.ParseAuth(m.RedfishAuth); err == nil {
			m.RedfishAuth = string(a)
		}
	}
	if len(m.Tags) == 0 {
		m.Tags = nil
	}
	return m
}

// Write writes inv in the given format. It refuses an inventory that would
// not pass [Inventory.Validate]; what it writes parses back to the same
// machines (privilege levels in their canonical spelling) and, in YAML,
// the same enclosures. CSV carries machines only.
func Write(w io.Writer, format Format, inv *Inventory) error {
	switch format {
	case YAML:
		return WriteYAML(w, inv)
	case CSV:
		return WriteCSV(w, inv)
	}
	return fmt.Errorf("inventory: unsupported format %v", format)
}

// Save writes inv to path in the format its extension names. It writes a
// temporary file next to path and renames it into place, keeping the mode
// of an existing file (0644 for a new one).
func Save(path string, inv *Inventory) error {
	format, err := FormatFromPath(path)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := Write(&buf, format, inv); err != nil {
		return err
	}
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("inventory: %w", err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("inventory: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	return nil
}
