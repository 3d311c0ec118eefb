package inventory

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/lightsout/lightsout/internal/guid"
)

// Field (and CSV column) names, in the order WriteCSV writes them.
var fieldNames = []string{
	"name", "guid", "address", "port", "user", "protocol",
	"password_file", "password_env", "cipher_suite", "enclosure", "slot",
}

// defaultNames are the fields a YAML defaults: block may set.
var defaultNames = []string{
	"port", "user", "protocol", "password_file", "password_env", "cipher_suite",
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
	case "enclosure":
		return &m.Enclosure
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

// fieldValue renders field name of m as it would be written.
func (m *Machine) fieldValue(name string) string {
	if p := m.textField(name); p != nil {
		return *p
	}
	if p := m.intField(name); p != nil {
		return strconv.Itoa(*p)
	}
	return ""
}

// entry is one machine on its way from a file to an Inventory.
type entry struct {
	m     Machine
	index int            // 1-based position in the file
	lines map[string]int // line of each field's value; missing → m.Line
	// skip marks fields already reported while parsing (not a number, say)
	// or inherited from YAML defaults, which are validated on their own.
	skip map[string]bool
	// given marks the fields the file wrote (YAML: with a non-null value).
	given map[string]bool
}

func newEntry(line, index int) *entry {
	return &entry{
		m: Machine{Line: line}, index: index,
		lines: map[string]int{}, skip: map[string]bool{}, given: map[string]bool{},
	}
}

func (e *entry) line(field string) int {
	if l, ok := e.lines[field]; ok {
		return l
	}
	return e.m.Line
}

// validateEntry reports every rule e breaks. seen maps names already used
// to their entry, for the uniqueness rule.
func validateEntry(c *collector, e *entry, seen map[string]*entry) {
	m := &e.m
	bad := map[string]bool{}
	report := func(field, value, reason string) {
		bad[field] = true
		c.add(e.line(field), m.Name, field, value, reason)
	}
	check := func(field string) bool { return !e.skip[field] && !bad[field] }

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
			where := fmt.Sprintf("machine #%d", prev.index)
			if prev.m.Line > 0 {
				where = fmt.Sprintf("the machine on line %d", prev.m.Line)
			}
			report("name", m.Name, "is already used by "+where)
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
	for _, f := range []string{"port", "protocol", "password_env", "cipher_suite"} {
		if check(f) {
			if r := checkDefaultable(f, m); r != "" {
				report(f, m.fieldValue(f), r)
			}
		}
	}
	if m.PasswordFile != "" && m.PasswordEnv != "" && !(e.skip["password_file"] && e.skip["password_env"]) {
		report("password_env", m.PasswordEnv, "is set together with password_file (give only one)")
	}
	if check("slot") {
		switch {
		case m.Slot < 0:
			report("slot", strconv.Itoa(m.Slot), "is negative (slots count from 1; 0 or empty means none)")
		case m.Slot > 0 && m.Enclosure == "" && !bad["enclosure"]:
			report("slot", strconv.Itoa(m.Slot), "is set but enclosure is empty (a slot needs an enclosure)")
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
	}
	return ""
}

// checkText is the rule every text field obeys: valid UTF-8, no control
// characters, no leading or trailing white space.
func checkText(s string) string {
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "contains a control character"
		}
	}
	if strings.TrimSpace(s) != s {
		return "has leading or trailing white space"
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
