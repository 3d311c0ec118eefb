package inventory

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"
)

// kv is one field of a machine under test: its YAML spelling (raw, as it
// appears after "key: ") and its CSV cell value.
type kv struct{ key, yaml, csv string }

func v(key, val string) kv { return kv{key, val, val} }

// yamlWith renders a good machine (lines 2-3) followed by fields, one per
// line from line 4.
func yamlWith(fields []kv) string {
	var b strings.Builder
	b.WriteString("machines:\n  - name: good\n    address: 10.0.0.1\n")
	for i, f := range fields {
		lead := "    "
		if i == 0 {
			lead = "  - "
		}
		fmt.Fprintf(&b, "%s%s: %s\n", lead, f.key, f.yaml)
	}
	if len(fields) == 0 {
		b.WriteString("  - {}\n")
	}
	return b.String()
}

// csvWith renders a header (line 1), a good machine (line 2) and fields as
// the row on line 3. The header always has name and address.
func csvWith(fields []kv) string {
	cols := []string{"name", "address"}
	vals := map[string]string{}
	for _, f := range fields {
		if f.key != "name" && f.key != "address" {
			cols = append(cols, f.key)
		}
		vals[f.key] = f.csv
	}
	good := make([]string, len(cols))
	good[0], good[1] = "good", "10.0.0.1"
	row := make([]string, len(cols))
	for i, c := range cols {
		row[i] = vals[c]
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.WriteAll([][]string{cols, good, row})
	return buf.String()
}

// yamlLine is where fields puts field (or the machine's line if absent).
func yamlLine(fields []kv, field string) int {
	for i, f := range fields {
		if f.key == field {
			return 4 + i
		}
	}
	return 4
}

var ok = []kv{v("name", "node-7"), v("address", "10.0.0.7")}

// with is the known-good machine ok with extra fields appended (or
// replaced, for name and address).
func with(extra ...kv) []kv {
	out := []kv{}
	for _, base := range ok {
		replaced := false
		for _, e := range extra {
			if e.key == base.key {
				replaced = true
			}
		}
		if !replaced {
			out = append(out, base)
		}
	}
	return append(out, extra...)
}

func without(key string) []kv {
	var out []kv
	for _, f := range ok {
		if f.key != key {
			out = append(out, f)
		}
	}
	return out
}

// TestValidationRules runs every rule against both formats and checks that
// the error names the field and the line.
func TestValidationRules(t *testing.T) {
	bad := []struct {
		desc   string
		fields []kv
		field  string
		reason string // substring of the reason
	}{
		{"name missing", without("name"), "name", "missing"},
		{"name with a space", with(kv{"name", `"node 7"`, "node 7"}), "name", "only letters"},
		{"name with a slash", with(v("name", "rack1/node7")), "name", "only letters"},
		{"name not unique", with(v("name", "good")), "name", "already used by the machine on line 2"},
		{"address missing", without("address"), "address", "missing"},
		{"address bad IPv4", with(v("address", "10.0.0.256")), "address", "not an IP address or DNS hostname"},
		{"address IPv4 with port", with(v("address", "10.0.0.7:623")), "address", "put the port in the port field"},
		{"address host with port", with(v("address", "bmc7.example.com:623")), "address", "put the port in the port field"},
		{"address bracketed IPv6", with(kv{"address", `"[fd00::7]"`, "[fd00::7]"}), "address", "without brackets"},
		{"address URL", with(v("address", "https://bmc7.example.com")), "address", "not a URL"},
		{"address underscore", with(v("address", "bmc_7.example.com")), "address", "not an IP address or DNS hostname"},
		{"address leading hyphen", with(v("address", "-bmc7.example.com")), "address", "not an IP address or DNS hostname"},
		{"address long label", with(v("address", strings.Repeat("a", 64)+".example.com")), "address", "not an IP address"},
		{"address space inside", with(kv{"address", `"bmc 7"`, "bmc 7"}), "address", "not an IP address"},
		{"port too big", with(v("port", "99999")), "port", "not a port (1-65535)"},
		{"port negative", with(v("port", "-1")), "port", "not a port"},
		{"port not a number", with(v("port", "ipmi")), "port", "not a whole number"},
		{"port fractional", with(v("port", "623.5")), "port", "not a whole number"},
		{"protocol unknown", with(v("protocol", "snmp")), "protocol", `want "ipmi" or "redfish"`},
		{"protocol wrong case", with(v("protocol", "IPMI")), "protocol", "not a protocol"},
		{"both password sources", with(v("password_file", "pw/node7"), v("password_env", "NODE7_PW")), "password_env", "together with password_file"},
		{"password_env starts with digit", with(v("password_env", "7PW")), "password_env", "not an environment variable name"},
		{"password_env with hyphen", with(v("password_env", "NODE-7")), "password_env", "not an environment variable name"},
		{"cipher suite 4", with(v("cipher_suite", "4")), "cipher_suite", "not a supported cipher suite"},
		{"cipher suite 18", with(v("cipher_suite", "18")), "cipher_suite", "not a supported cipher suite"},
		{"cipher suite negative", with(v("cipher_suite", "-3")), "cipher_suite", "not a supported cipher suite"},
		{"cipher suite text", with(v("cipher_suite", "auto")), "cipher_suite", "not a whole number"},
		{"redfish_auth unknown", with(v("protocol", "redfish"), v("redfish_auth", "digest")), "redfish_auth", "want auto, session or basic"},
		{"redfish_auth token", with(v("protocol", "redfish"), v("redfish_auth", "token")), "redfish_auth", "not a Redfish authentication"},
		{"cipher suites with 0", with(kv{"cipher_suites", "[17, 0]", "17;0"}), "cipher_suites", "suite 0 (no authentication"},
		{"cipher suites unknown", with(kv{"cipher_suites", "[17, 4]", "17;4"}), "cipher_suites", "suite 4, which is not supported"},
		{"cipher suites text", with(kv{"cipher_suites", "[17, best]", "17;best"}), "cipher_suites", `"best", which is not a cipher suite number`},
		{"cipher suites twice", with(kv{"cipher_suites", "[3, 3]", "3;3"}), "cipher_suites", "suite 3 twice"},
		{"slot negative", with(v("enclosure", "chassis-1"), v("slot", "-1")), "slot", "negative"},
		{"slot without enclosure", with(v("slot", "3")), "slot", "needs an enclosure"},
		{"slot not a number", with(v("enclosure", "chassis-1"), v("slot", "third")), "slot", "not a whole number"},
		{"guid too short", with(v("guid", "0102")), "guid", "not a GUID"},
		{"guid not hex", with(v("guid", "zz030201-0605-0807-090a-0b0c0d0e0f10")), "guid", "not a GUID"},
		{"guid bad dashes", with(v("guid", "0403020-10605-0807-090a-0b0c0d0e0f10")), "guid", "not a GUID"},
		{"user with control character", with(kv{"user", `"ad\tmin"`, "ad\tmin"}), "user", "control character"},
		{"enclosure with control character", with(kv{"enclosure", `"a\u0007b"`, "a\u0007b"}), "enclosure", "control character"},
		{"password_file with newline", with(kv{"password_file", `"pw\nfile"`, "pw\nfile"}), "password_file", "control character"},
	}
	for _, tc := range bad {
		for _, format := range []Format{YAML, CSV} {
			t.Run(format.String()+"/"+tc.desc, func(t *testing.T) {
				src, line := yamlWith(tc.fields), yamlLine(tc.fields, tc.field)
				if format == CSV {
					src, line = csvWith(tc.fields), 3
				}
				inv, err := parseString(t, format, src)
				if inv != nil {
					t.Fatalf("want no inventory, got %+v", inv)
				}
				fe := wantError(t, err, line, tc.field)
				if !strings.Contains(fe.Reason, tc.reason) {
					t.Errorf("reason %q does not mention %q", fe.Reason, tc.reason)
				}
				msg := fe.Error()
				wantPrefix := fmt.Sprintf("fleet.%s:%d: ", strings.ToLower(format.String()), line)
				if !strings.HasPrefix(msg, wantPrefix) || !strings.Contains(msg, fmt.Sprintf("field %q: ", tc.field)) {
					t.Errorf("message %q: want prefix %q and the field named", msg, wantPrefix)
				}
				if strings.Contains(msg, "\n") {
					t.Errorf("message is not one line: %q", msg)
				}
				if errs := fieldErrors(t, err); len(errs) != 1 {
					t.Errorf("want exactly one error, got %d:\n%v", len(errs), err)
				}
			})
		}
	}
}

// TestValidationAccepts is the other side of every rule: values at the
// edges that must parse, in both formats.
func TestValidationAccepts(t *testing.T) {
	good := []struct {
		desc   string
		fields []kv
	}{
		{"minimal", ok},
		{"name with dots, underscores, hyphens", with(v("name", "rack_1.node-7.A"))},
		{"IPv6", with(kv{"address", `"fd00::7"`, "fd00::7"})},
		{"IPv6 with zone", with(kv{"address", `"fe80::7%eth0"`, "fe80::7%eth0"})},
		{"IPv4-mapped IPv6", with(v("address", "::ffff:10.0.0.7"))},
		{"hostname", with(v("address", "bmc7"))},
		{"FQDN with trailing dot", with(v("address", "bmc-7.rack1.example.com."))},
		{"hostname with digit labels", with(v("address", "7.rack1.example.com"))},
		{"port 0 means default", with(v("port", "0"))},
		{"port 1", with(v("port", "1"))},
		{"port 65535", with(v("port", "65535"))},
		{"protocol ipmi", with(v("protocol", "ipmi"))},
		{"protocol redfish", with(v("protocol", "redfish"))},
		{"no password source", ok},
		{"password_file only", with(v("password_file", "/etc/lightsout/pw"))},
		{"password_env only", with(v("password_env", "_NODE7_PW"))},
		{"cipher suite 0", with(v("cipher_suite", "0"))},
		{"cipher suite 3", with(v("cipher_suite", "3"))},
		{"cipher suite 17", with(v("cipher_suite", "17"))},
		{"redfish_auth auto", with(v("protocol", "redfish"), v("redfish_auth", "auto"))},
		{"redfish_auth session", with(v("protocol", "redfish"), v("redfish_auth", "session"))},
		{"redfish_auth basic", with(v("protocol", "redfish"), v("redfish_auth", "basic"))},
		{"cipher suites 17, 3", with(kv{"cipher_suites", "[17, 3]", "17;3"})},
		{"cipher suites 3", with(kv{"cipher_suites", "[3]", "3"})},
		{"slot 0 without enclosure", with(v("slot", "0"))},
		{"enclosure without slot", with(v("enclosure", "chassis-1"))},
		{"slot with enclosure", with(v("enclosure", "chassis-1"), v("slot", "12"))},
		{"guid SMBIOS", with(v("guid", "04030201-0605-0807-090a-0b0c0d0e0f10"))},
		{"guid bare hex", with(v("guid", "0102030405060708090A0B0C0D0E0F10"))},
		{"guid braces", with(kv{"guid", `"{04030201-0605-0807-090a-0b0c0d0e0f10}"`, "{04030201-0605-0807-090a-0b0c0d0e0f10}"})},
		{"user with inner space and unicode", with(kv{"user", `"ops admin é"`, "ops admin é"})},
	}
	for _, tc := range good {
		for _, format := range []Format{YAML, CSV} {
			t.Run(format.String()+"/"+tc.desc, func(t *testing.T) {
				src := yamlWith(tc.fields)
				if format == CSV {
					src = csvWith(tc.fields)
				}
				inv := mustParse(t, format, src)
				if len(inv.Machines) != 2 {
					t.Fatalf("want 2 machines, got %d", len(inv.Machines))
				}
				m := inv.Machines[1]
				for _, f := range tc.fields {
					if got := m.fieldValue(f.key); got != f.csv {
						t.Errorf("%s = %q, want %q", f.key, got, f.csv)
					}
				}
				wantLine := 4
				if format == CSV {
					wantLine = 3
				}
				if m.Line != wantLine {
					t.Errorf("Line = %d, want %d", m.Line, wantLine)
				}
			})
		}
	}
}

func TestInvalidUTF8(t *testing.T) {
	// CSV: a field error. YAML: the reader rejects the file, at that line.
	_, err := parseString(t, CSV, csvWith(with(v("user", "ad\xffmin"))))
	wantError(t, err, 3, "user")
	_, err = parseString(t, YAML, yamlWith(with(v("user", "ad\xffmin"))))
	fe := wantError(t, err, 6, "")
	if !strings.Contains(fe.Reason, "YAML syntax error") {
		t.Errorf("reason = %q", fe.Reason)
	}
}

func TestYAMLWhitespaceIsAnError(t *testing.T) {
	// CSV cells are trimmed; a YAML value can only carry white space on
	// purpose (quoted), and then it is almost certainly a mistake.
	_, err := parseString(t, YAML, yamlWith(with(v("user", `"admin "`))))
	wantError(t, err, 6, "user")
	inv := mustParse(t, CSV, csvWith(with(v("user", " admin "))))
	if u := inv.Machines[1].User; u != "admin" {
		t.Errorf("CSV user = %q, want trimmed", u)
	}
}

func TestAllErrorsReported(t *testing.T) {
	src := `machines:
  - name: a
    address: 10.0.0.1
    port: 0x1ffff
  - name: a
    address: bmc_2
    protocol: ftp
  - address: 10.0.0.3
    slot: 2
    colour: blue
`
	_, err := parseString(t, YAML, src)
	errs := fieldErrors(t, err)
	want := []struct {
		line         int
		machine, fld string
	}{
		{4, "a", "port"}, {5, "a", "name"}, {6, "a", "address"}, {7, "a", "protocol"},
		{8, "", "name"}, {9, "", "slot"}, {10, "", "colour"},
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if e := errs[i]; e.Line != w.line || e.Machine != w.machine || e.Field != w.fld {
			t.Errorf("error %d = %v; want line %d machine %q field %q", i, e, w.line, w.machine, w.fld)
		}
	}
}

func TestErrorsMessage(t *testing.T) {
	fe := &FieldError{Source: "fleet.csv", Line: 12, Machine: "node-7", Field: "port", Value: "99999", Reason: "is not a port (1-65535)"}
	if got, want := fe.Error(), `fleet.csv:12: machine "node-7": field "port": "99999" is not a port (1-65535)`; got != want {
		t.Errorf("Error() = %s\nwant      %s", got, want)
	}
	fe = &FieldError{Source: "fleet.yaml", Line: 3, Reason: "YAML syntax error: x"}
	if got, want := fe.Error(), `fleet.yaml:3: YAML syntax error: x`; got != want {
		t.Errorf("Error() = %s, want %s", got, want)
	}
	long := &FieldError{Field: "user", Value: strings.Repeat("x", 200), Reason: "is long"}
	if n := len(long.Error()); n > 100 {
		t.Errorf("long value not shortened: %d bytes", n)
	}

	// 25 bad rows: 20 listed, the rest counted.
	var b strings.Builder
	b.WriteString("name,address,port\n")
	for i := range 25 {
		fmt.Fprintf(&b, "n%d,10.0.0.%d,70000\n", i, i+1)
	}
	_, err := parseString(t, CSV, b.String())
	errs := fieldErrors(t, err)
	if len(errs) != 25 {
		t.Fatalf("Errors holds %d, want all 25", len(errs))
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != MaxReported+1 || lines[MaxReported] != "... and 5 more problems" {
		t.Errorf("Error() has %d lines, last %q", len(lines), lines[len(lines)-1])
	}
	var first *FieldError
	if !errorsAs(err, &first) || first.Line != 2 {
		t.Errorf("errors.As(*FieldError) = %v", first)
	}
}
