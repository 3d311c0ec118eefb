package inventory

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/redfish"
)

// Field (and CSV column) names, in the order WriteCSV writes them (the
// order of the Machine struct, which WriteYAML follows).
var fieldNames = []string{
	"name", "guid", "address", "port", "user", "protocol",
	"password_file", "password_env", "cipher_suite", "cipher_suites", "privilege", "redfish_auth",
	"enclosure", "slot", "group", "role", "tags", "spare", "zone",
}

// defaultNames are the fields a YAML defaults: block may set: everything
// but a machine's identity and place (name, guid, address, enclosure, slot).
var defaultNames = []string{
	"port", "user", "protocol", "password_file", "password_env", "cipher_suite",
	"cipher_suites", "privilege", "redfish_auth", "group", "role", "tags", "spare", "zone",
}

// enclosureFieldNames are the fields of an entry in enclosures:, in the
// order of the Enclosure struct.
var enclosureFieldNames = []string{
	"name", "address", "port", "user", "protocol", "password_file", "password_env", "slots", "kind", "ipmb",
}

// record is a Machine or an Enclosure seen as named fields, for the
// parsers. Each method returns nil for a name that is not a field of
// that kind.
type record interface {
	textField(name string) *string
	intField(name string) *int
	boolField(name string) *bool
	listField(name string) *[]string
}

// textField is the string field called name, or nil.
func (m *Machine) textField(name string) *string {
	switch name {
	case "name":
		return &m.Name
	case "guid":
		return &m.GUID
	case "address":
		return &m.Address
	case "user":
		return &m.User
	case "protocol":
		return &m.Protocol
	case "password_file":
		return &m.PasswordFile
	case "password_env":
		return &m.PasswordEnv
	case "privilege":
		return &m.Privilege
	case "redfish_auth":
		return &m.RedfishAuth
	case "enclosure":
		return &m.Enclosure
	case "group":
		return &m.Group
	case "role":
		return &m.Role
	case "zone":
		return &m.Zone
	}
	return nil
}

// intField is the integer field called name, or nil.
func (m *Machine) intField(name string) *int {
	switch name {
	case "port":
		return &m.Port
	case "cipher_suite":
		return &m.CipherSuite
	case "slot":
		return &m.Slot
	}
	return nil
}

// boolField is the boolean field called name, or nil.
func (m *Machine) boolField(name string) *bool {
	if name == "spare" {
		return &m.Spare
	}
	return nil
}

// listField is the list field called name, or nil.
func (m *Machine) listField(name string) *[]string {
	switch name {
	case "tags":
		return &m.Tags
	case "cipher_suites":
		return &m.CipherSuites
	}
	return nil
}

// copyField sets field name of m to its value in from.
func (m *Machine) copyField(name string, from *Machine) {
	switch {
	case m.textField(name) != nil:
		*m.textField(name) = *from.textField(name)
	case m.intField(name) != nil:
		*m.intField(name) = *from.intField(name)
	case m.boolField(name) != nil:
		*m.boolField(name) = *from.boolField(name)
	case m.listField(name) != nil:
		*m.listField(name) = slices.Clone(*from.listField(name))
	}
}

// fieldValue renders field name of m as a CSV cell would hold it (tags
// joined with ';').
func (m *Machine) fieldValue(name string) string {
	return recordValue(m, name)
}

func (e *Enclosure) textField(name string) *string {
	switch name {
	case "name":
		return &e.Name
	case "address":
		return &e.Address
	case "user":
		return &e.User
	case "protocol":
		return &e.Protocol
	case "password_file":
		return &e.PasswordFile
	case "password_env":
		return &e.PasswordEnv
	case "kind":
		return &e.Kind
	case "ipmb":
		return &e.IPMB
	}
	return nil
}

func (e *Enclosure) intField(name string) *int {
	switch name {
	case "port":
		return &e.Port
	case "slots":
		return &e.Slots
	}
	return nil
}

func (e *Enclosure) boolField(string) *bool        { return nil }
func (e *Enclosure) listField(string) *[]string    { return nil }
func (e *Enclosure) fieldValue(name string) string { return recordValue(e, name) }

func recordValue(r record, name string) string {
	if p := r.textField(name); p != nil {
		return *p
	}
	if p := r.intField(name); p != nil {
		return strconv.Itoa(*p)
	}
	if p := r.boolField(name); p != nil {
		return strconv.FormatBool(*p)
	}
	if p := r.listField(name); p != nil {
		return strings.Join(*p, tagSeparator)
	}
	return ""
}

// tagSeparator separates tags in a CSV cell.
const tagSeparator = ";"

// meta is what a parser learned about a record's fields besides their
// values.
type meta struct {
	lines map[string]int // line of each field's value; missing → the record's line
	// skip marks fields already reported while parsing (not a number, say)
	// or inherited from YAML defaults, which are validated on their own.
	skip map[string]bool
	// given marks the fields the file wrote (YAML: with a non-null value).
	given map[string]bool
	// bad marks the fields validation reported.
	bad map[string]bool
	// tagLines is the line of each tag, when the tags came from a YAML
	// list; nil otherwise.
	tagLines []int
}

func newMeta() meta {
	return meta{lines: map[string]int{}, skip: map[string]bool{}, given: map[string]bool{}, bad: map[string]bool{}}
}

// entry is one machine on its way from a file to an Inventory.
type entry struct {
	m     Machine
	index int // 1-based position in the file
	meta
}

func newEntry(line, index int) *entry {
	return &entry{m: Machine{Line: line}, index: index, meta: newMeta()}
}

func (e *entry) line(field string) int {
	if l, ok := e.lines[field]; ok {
		return l
	}
	return e.m.Line
}

// tagLine is the line of tag i.
func (mt *meta) tagLine(i int, fallback int) int {
	if i < len(mt.tagLines) {
		return mt.tagLines[i]
	}
	return fallback
}

// encEntry is one enclosure on its way from a file to an Inventory.
type encEntry struct {
	e     Enclosure
	index int // 1-based position in the enclosures: list
	meta
}

func newEncEntry(line, index int) *encEntry {
	return &encEntry{e: Enclosure{Line: line}, index: index, meta: newMeta()}
}

func (e *encEntry) line(field string) int {
	if l, ok := e.lines[field]; ok {
		return l
	}
	return e.e.Line
}

// validateAll validates enclosures, then machines, then the rules between
// them.
func validateAll(c *collector, entries []*entry, encs []*encEntry) {
	seenEnc := map[string]*encEntry{}
	for _, e := range encs {
		validateEnclosure(c, e, seenEnc)
	}
	seen := map[string]*entry{}
	for _, e := range entries {
		validateEntry(c, e, seen)
	}
	crossCheck(c, entries, seenEnc)
}

// where names a record in an error message: "the machine on line 5", or
// "machine #2" when it has no line.
func where(kind string, index, line int) string {
	if line > 0 {
		return fmt.Sprintf("the %s on line %d", kind, line)
	}
	return fmt.Sprintf("%s #%d", kind, index)
}

// validateEntry reports every rule e breaks. seen maps names already used
// to their entry, for the uniqueness rule.
func validateEntry(c *collector, e *entry, seen map[string]*entry) {
	m := &e.m
	report := func(field, value, reason string) {
		e.bad[field] = true
		c.add(e.line(field), m.Name, field, value, reason)
	}
	check := func(field string) bool { return !e.skip[field] && !e.bad[field] }

	for _, f := range fieldNames {
		if p := m.textField(f); p != nil && *p != "" && check(f) {
			if r := checkText(*p); r != "" {
				report(f, *p, r)
			}
		}
	}

	switch {
	case !check("name"):
	case m.Name == "":
		report("name", "", "missing (every machine needs a name)")
	case !validName(m.Name):
		report("name", m.Name, "may contain only letters, digits, '.', '_' and '-'")
	default:
		if prev, ok := seen[m.Name]; ok {
			report("name", m.Name, "is already used by "+where("machine", prev.index, prev.m.Line))
		} else {
			seen[m.Name] = e
		}
	}

	switch {
	case !check("address"):
	case m.Address == "":
		report("address", "", "missing (every machine needs an address)")
	default:
		if r := checkAddress(m.Address); r != "" {
			report("address", m.Address, r)
		}
	}

	if check("guid") && m.GUID != "" {
		if _, err := guid.Parse(m.GUID); err != nil {
			report("guid", m.GUID, "is not a GUID (want 32 hex digits, optionally dashed 8-4-4-4-12, optionally in braces)")
		}
	}
	for _, f := range []string{"port", "protocol", "password_env", "cipher_suite", "cipher_suites", "privilege", "redfish_auth", "group", "zone"} {
		if check(f) {
			if r := checkDefaultable(f, m); r != "" {
				report(f, m.fieldValue(f), r)
			}
		}
	}
	if check("tags") {
		checkTags(m.Tags, func(i int, tag, reason string) {
			e.bad["tags"] = true
			c.add(e.tagLine(i, e.line("tags")), m.Name, "tags", tag, reason)
		})
	}
	if m.PasswordFile != "" && m.PasswordEnv != "" && !(e.skip["password_file"] && e.skip["password_env"]) {
		report("password_env", m.PasswordEnv, "is set together with password_file (give only one)")
	}
	if check("slot") {
		switch {
		case m.Slot < 0:
			report("slot", strconv.Itoa(m.Slot), "is negative (slots count from 1; 0 or empty means none)")
		case m.Slot > 0 && m.Enclosure == "" && !e.bad["enclosure"]:
			report("slot", strconv.Itoa(m.Slot), "is set but enclosure is empty (a slot needs an enclosure)")
		}
	}
}

// validateEnclosure reports every rule e breaks. seen maps enclosure names
// already used to their entry.
func validateEnclosure(c *collector, e *encEntry, seen map[string]*encEntry) {
	en := &e.e
	report := func(field, value, reason string) {
		e.bad[field] = true
		c.addEnclosure(e.line(field), en.Name, field, value, reason)
	}
	check := func(field string) bool { return !e.skip[field] && !e.bad[field] }

	for _, f := range enclosureFieldNames {
		if p := en.textField(f); p != nil && *p != "" && check(f) {
			if r := checkText(*p); r != "" {
				report(f, *p, r)
			}
		}
	}
	switch {
	case !check("name"):
	case en.Name == "":
		report("name", "", "missing (every enclosure needs a name)")
	case !validName(en.Name):
		report("name", en.Name, "may contain only letters, digits, '.', '_' and '-'")
	default:
		if prev, ok := seen[en.Name]; ok {
			report("name", en.Name, "is already used by "+where("enclosure", prev.index, prev.e.Line))
		} else {
			seen[en.Name] = e
		}
	}
	switch {
	case !check("address"):
	case en.Address == "":
		report("address", "", "missing (every enclosure needs an address)")
	default:
		if r := checkAddress(en.Address); r != "" {
			report("address", en.Address, r)
		}
	}
	if check("port") && (en.Port < 0 || en.Port > 65535) {
		report("port", strconv.Itoa(en.Port), "is not a port (1-65535)")
	}
	if check("protocol") {
		switch en.Protocol {
		case "":
		case ProtocolIPMI:
			if en.Kind == KindRedfish {
				report("protocol", en.Protocol, `does not fit kind "redfish" (want "redfish")`)
			}
		case ProtocolRedfish:
			if en.Kind != KindRedfish {
				report("protocol", en.Protocol, `is for enclosures of kind "redfish" only (set kind: redfish)`)
			}
		default:
			report("protocol", en.Protocol, `is not a protocol (want "ipmi", or "redfish" with kind redfish)`)
		}
	}
	if check("password_env") && en.PasswordEnv != "" && !validEnvName(en.PasswordEnv) {
		report("password_env", en.PasswordEnv, "is not an environment variable name (letters, digits and '_', not starting with a digit)")
	}
	if en.PasswordFile != "" && en.PasswordEnv != "" {
		report("password_env", en.PasswordEnv, "is set together with password_file (give only one)")
	}
	if check("kind") {
		switch en.Kind {
		case "", KindOEM, KindIPMB, KindRedfish:
		default:
			report("kind", en.Kind, `is not an enclosure kind (want "ipmb" for standard IPMI bridging, "redfish" for a Redfish enclosure manager, or "oem")`)
		}
	}
	if check("ipmb") && en.IPMB != "" {
		if en.Kind != KindIPMB {
			report("ipmb", en.IPMB, `applies to an enclosure of kind "ipmb" only`)
		} else if r, err := ipmi.ParseIPMBRule(en.IPMB); err != nil {
			report("ipmb", en.IPMB, err.Error())
		} else if en.Slots >= 1 {
			if _, err := r.Address(en.Slots); err != nil {
				report("ipmb", en.IPMB, "gives no address for "+err.Error())
			}
		}
	}
	if check("slots") {
		switch {
		case en.Slots == 0 && !e.given["slots"]:
			report("slots", "", fmt.Sprintf("missing (every enclosure needs its number of slots, 1-%d)", MaxSlots))
		case en.Slots < 1 || en.Slots > MaxSlots:
			report("slots", strconv.Itoa(en.Slots), fmt.Sprintf("is not a number of slots (1-%d)", MaxSlots))
		}
	}
}

// crossCheck checks machines against the enclosures: a machine's slot
// must exist in an enclosure the file defines, and no two machines may
// share a slot of one enclosure (defined in the file or not). Machines
// whose slot or enclosure was already reported are left out.
func crossCheck(c *collector, entries []*entry, encs map[string]*encEntry) {
	type place struct {
		enclosure string
		slot      int
	}
	taken := map[place]*entry{}
	for _, e := range entries {
		m := &e.m
		if m.Slot <= 0 || m.Enclosure == "" || e.skip["slot"] || e.bad["slot"] || e.bad["enclosure"] {
			continue
		}
		report := func(reason string) {
			e.bad["slot"] = true
			c.add(e.line("slot"), m.Name, "slot", strconv.Itoa(m.Slot), reason)
		}
		if enc, ok := encs[m.Enclosure]; ok && !enc.bad["slots"] && !enc.skip["slots"] && m.Slot > enc.e.Slots {
			reason := fmt.Sprintf("is beyond the %d %s of enclosure %s", enc.e.Slots, plural(enc.e.Slots, "slot", "slots"), quote(m.Enclosure))
			if enc.e.Line > 0 {
				reason += fmt.Sprintf(" (line %d)", enc.e.Line)
			}
			report(reason)
			continue
		}
		k := place{m.Enclosure, m.Slot}
		if prev, ok := taken[k]; ok {
			reason := fmt.Sprintf("in enclosure %s is already taken by machine %s", quote(m.Enclosure), quote(prev.m.Name))
			if prev.m.Line > 0 {
				reason += fmt.Sprintf(" (line %d)", prev.m.Line)
			}
			report(reason)
			continue
		}
		taken[k] = e
	}
}

// checkTags calls bad for every tag that breaks a rule: not empty, the
// text rule, no ';' (it separates tags in CSV), each tag once.
func checkTags(tags []string, bad func(i int, tag, reason string)) {
	seen := map[string]bool{}
	for i, t := range tags {
		switch {
		case t == "":
			bad(i, t, fmt.Sprintf("tag #%d is empty", i+1))
		case checkText(t) != "":
			bad(i, t, checkText(t))
		case strings.Contains(t, tagSeparator):
			bad(i, t, "contains ';' (it separates tags in CSV; give each tag as its own list item)")
		case seen[t]:
			bad(i, t, "is listed twice")
		default:
			seen[t] = true
		}
	}
}

// checkDefaultable checks one of the fields a defaults block may also set
// and returns what is wrong, or "".
func checkDefaultable(field string, m *Machine) string {
	switch field {
	case "port":
		if m.Port < 0 || m.Port > 65535 {
			return "is not a port (1-65535)"
		}
	case "protocol":
		if m.Protocol != "" && m.Protocol != ProtocolIPMI && m.Protocol != ProtocolRedfish {
			return `is not a protocol (want "ipmi" or "redfish")`
		}
	case "password_env":
		if m.PasswordEnv != "" && !validEnvName(m.PasswordEnv) {
			return "is not an environment variable name (letters, digits and '_', not starting with a digit)"
		}
	case "cipher_suite":
		if !validCipherSuite(m.CipherSuite) {
			return "is not a supported cipher suite (0 = automatic, 1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17)"
		}
	case "cipher_suites":
		if _, err := ParseSuiteList(m.CipherSuites); err != nil {
			return err.Error()
		}
	case "privilege":
		if _, ok := ParsePrivilege(m.Privilege); !ok {
			return "is not a privilege level (want user, operator or administrator; any case; admin also works)"
		}
	case "redfish_auth":
		if _, err := redfish.ParseAuth(m.RedfishAuth); err != nil || strings.TrimSpace(m.RedfishAuth) != m.RedfishAuth {
			return "is not a Redfish authentication (want auto, session or basic; empty means auto)"
		}
	case "group":
		if m.Group != "" && !validName(m.Group) {
			return "may contain only letters, digits, '.', '_' and '-'"
		}
	case "zone":
		if m.Zone != "" && !validName(m.Zone) {
			return "may contain only letters, digits, '.', '_' and '-'"
		}
	}
	return ""
}

// MaxText is the longest text field, in bytes.
const MaxText = 255

// CheckText is the rule every text field obeys — in an inventory file and
// in every API request: valid UTF-8, at most MaxText bytes, printable (no
// control or format characters such as a right-to-left override), no
// leading or trailing white space. It returns what is wrong, or "".
func CheckText(s string) string { return checkText(s) }

func checkText(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	if len(s) > MaxText {
		return fmt.Sprintf("is %d bytes long (at most %d)", len(s), MaxText)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "contains a control character"
		}
		if !unicode.IsPrint(r) && r != '\u00a0' {
			return fmt.Sprintf("contains a non-printable character (U+%04X)", r)
		}
	}
	if strings.TrimSpace(s) != s {
		return "has leading or trailing white space"
	}
	return ""
}

// CheckName says what is wrong with a machine, enclosure or group name
// ("" when nothing): the inventory's rule, for every way in.
func CheckName(s string) string {
	if r := checkText(s); r != "" {
		return r
	}
	if !validName(s) {
		return "may contain only letters, digits, '.', '_' and '-'"
	}
	return ""
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isAlnum(c) || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func validEnvName(s string) bool {
	if s == "" || isDigit(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(isAlnum(c) || c == '_') {
			return false
		}
	}
	return true
}

var cipherSuites = map[int]bool{0: true, 1: true, 2: true, 3: true, 6: true, 7: true, 8: true, 11: true, 12: true, 15: true, 16: true, 17: true}

func validCipherSuite(n int) bool { return cipherSuites[n] }

// ParseSuiteList reads a cipher suite allow-list ("17", "3"): each a
// supported suite other than 0 (no authentication: never allowed in a
// list; audit it instead), none twice. The error says which entry is
// wrong and why; nil or empty is the default (nil, nil).
func ParseSuiteList(items []string) ([]int, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := make([]int, 0, len(items))
	for _, it := range items {
		n, err := strconv.Atoi(strings.TrimSpace(it))
		switch {
		case err != nil:
			return nil, fmt.Errorf("has %q, which is not a cipher suite number (want a list such as [17, 3])", it)
		case n == 0:
			return nil, fmt.Errorf("names suite 0 (no authentication, integrity or encryption), which is never allowed")
		case !validCipherSuite(n):
			return nil, fmt.Errorf("names suite %d, which is not supported (1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17)", n)
		case slices.Contains(out, n):
			return nil, fmt.Errorf("names suite %d twice", n)
		}
		out = append(out, n)
	}
	return out, nil
}

// checkAddress accepts an IPv4 or IPv6 literal (an IPv6 zone is allowed)
// or a DNS hostname, and otherwise says what is wrong, with a hint for the
// usual mistakes.
func checkAddress(s string) string {
	if _, err := netip.ParseAddr(s); err == nil {
		return ""
	}
	if validHostname(s) {
		return ""
	}
	const base = "is not an IP address or DNS hostname"
	switch {
	case strings.Contains(s, "://"):
		return base + " (give the bare host, not a URL)"
	case strings.HasPrefix(s, "["):
		return base + " (write IPv6 addresses without brackets)"
	}
	if _, err := netip.ParseAddrPort(s); err == nil {
		return base + " (put the port in the port field)"
	}
	if h, p, err := splitHostPort(s); err == nil && validHostname(h) && p != "" {
		return base + " (put the port in the port field)"
	}
	return base
}

func splitHostPort(s string) (host, port string, err error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", fmt.Errorf("no port")
	}
	if _, err := strconv.Atoi(s[i+1:]); err != nil {
		return "", "", err
	}
	return s[:i], s[i+1:], nil
}

// validHostname follows RFC 1123: dot-separated labels of letters, digits
// and '-', 1-63 characters each, not starting or ending with '-', at most
// 253 characters, optionally one trailing dot. The last label may not be
// all digits, so a mistyped IPv4 address ("10.0.0.256") is not taken for a
// name.
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			if c := l[i]; !(isAlnum(c) || c == '-') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	for i := 0; i < len(last); i++ {
		if !isDigit(last[i]) {
			return true
		}
	}
	return false
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlnum(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}
