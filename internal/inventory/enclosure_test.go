package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// encYAML renders a good enclosure (lines 2-4) followed by one with
// fields, one per line from line 5, and no machines.
func encYAML(fields []kv) string {
	var b strings.Builder
	b.WriteString("enclosures:\n  - name: good\n    address: 10.0.9.1\n    slots: 8\n")
	for i, f := range fields {
		lead := "    "
		if i == 0 {
			lead = "  - "
		}
		fmt.Fprintf(&b, "%s%s: %s\n", lead, f.key, f.yaml)
	}
	b.WriteString("machines: []\n")
	return b.String()
}

func encLine(fields []kv, field string) int {
	for i, f := range fields {
		if f.key == field {
			return 5 + i
		}
	}
	return 5
}

var okEnc = []kv{v("name", "chassis-7"), v("address", "10.0.9.7"), v("slots", "16")}

// withEnc is okEnc with fields replaced or added; a field with an empty
// key removes nothing, a kv with yaml "-" removes that field.
func withEnc(extra ...kv) []kv {
	out := []kv{}
	for _, base := range okEnc {
		replaced := false
		for _, e := range extra {
			replaced = replaced || e.key == base.key
		}
		if !replaced {
			out = append(out, base)
		}
	}
	for _, e := range extra {
		if e.yaml != "-" {
			out = append(out, e)
		}
	}
	return out
}

func TestEnclosureRules(t *testing.T) {
	bad := []struct {
		desc   string
		fields []kv
		field  string
		value  string
		reason string
	}{
		{"name missing", withEnc(kv{"name", "-", ""}), "name", "", "missing (every enclosure needs a name)"},
		{"name with a space", withEnc(kv{"name", `"chassis 7"`, ""}), "name", "chassis 7", "only letters"},
		{"name not unique", withEnc(v("name", "good")), "name", "good", "already used by the enclosure on line 2"},
		{"address missing", withEnc(kv{"address", "-", ""}), "address", "", "missing (every enclosure needs an address)"},
		{"address with port", withEnc(v("address", "10.0.9.7:623")), "address", "10.0.9.7:623", "put the port in the port field"},
		{"address URL", withEnc(v("address", "https://cmc7")), "address", "https://cmc7", "not a URL"},
		{"port too big", withEnc(v("port", "70000")), "port", "70000", "not a port (1-65535)"},
		{"port negative", withEnc(v("port", "-1")), "port", "-1", "not a port"},
		{"port not a number", withEnc(v("port", "ipmi")), "port", "ipmi", "not a whole number"},
		{"user with control character", withEnc(kv{"user", `"ad\tmin"`, ""}), "user", "ad\tmin", "control character"},
		{"protocol redfish without kind redfish", withEnc(v("protocol", "redfish")), "protocol", "redfish", `for enclosures of kind "redfish" only`},
		{"kind redfish over ipmi", withEnc(v("kind", "redfish"), v("protocol", "ipmi")), "protocol", "ipmi", `does not fit kind "redfish"`},
		{"protocol unknown", withEnc(v("protocol", "snmp")), "protocol", "snmp", `want "ipmi"`},
		{"protocol wrong case", withEnc(v("protocol", "IPMI")), "protocol", "IPMI", "not a protocol"},
		{"both password sources", withEnc(v("password_file", "cmc.pw"), v("password_env", "CMC_PW")), "password_env", "CMC_PW", "together with password_file"},
		{"password_env bad", withEnc(v("password_env", "7PW")), "password_env", "7PW", "not an environment variable name"},
		{"password_file with newline", withEnc(kv{"password_file", `"a\nb"`, ""}), "password_file", "a\nb", "control character"},
		{"slots missing", withEnc(kv{"slots", "-", ""}), "slots", "", "missing (every enclosure needs its number of slots, 1-64)"},
		{"slots 0", withEnc(v("slots", "0")), "slots", "0", "not a number of slots (1-64)"},
		{"slots 65", withEnc(v("slots", "65")), "slots", "65", "not a number of slots (1-64)"},
		{"slots negative", withEnc(v("slots", "-2")), "slots", "-2", "not a number of slots"},
		{"slots not a number", withEnc(v("slots", "many")), "slots", "many", "not a whole number"},
		{"slots a list", withEnc(kv{"slots", "[1, 2]", ""}), "slots", "", "single value"},
		{"unknown field", withEnc(v("blades", "16")), "blades", "", "unknown field (known: name, address, port, user, protocol, password_file, password_env, slots, kind, ipmb)"},
		{"machine field", withEnc(v("guid", "0102030405060708090a0b0c0d0e0f10")), "guid", "", "unknown field"},
		{"kind unknown", withEnc(v("kind", "snmp")), "kind", "snmp", `want "ipmb" for standard IPMI bridging, "redfish" for a Redfish enclosure manager, or "oem"`},
		{"ipmb without kind ipmb", withEnc(v("ipmb", `"0x82+2"`)), "ipmb", "0x82+2", `applies to an enclosure of kind "ipmb" only`},
		{"ipmb odd address", withEnc(v("kind", "ipmb"), v("ipmb", `"0x83+2"`)), "ipmb", "0x83+2", "not an IPMB slave address"},
		{"ipmb list too short", withEnc(v("kind", "ipmb"), v("ipmb", `"0x82,0x84"`)), "ipmb", "0x82,0x84", "gives no address for slot"},
	}
	for _, tc := range bad {
		if tc.field == "" {
			continue
		}
		t.Run(tc.desc, func(t *testing.T) {
			src, line := encYAML(tc.fields), encLine(tc.fields, tc.field)
			inv, err := parseString(t, YAML, src)
			if inv != nil {
				t.Fatalf("want no inventory, got %+v", inv)
			}
			fe := wantError(t, err, line, tc.field)
			if !strings.Contains(fe.Reason, tc.reason) {
				t.Errorf("reason %q does not mention %q", fe.Reason, tc.reason)
			}
			if fe.Value != tc.value {
				t.Errorf("value %q, want %q", fe.Value, tc.value)
			}
			wantName := ""
			for _, f := range tc.fields {
				if f.key == "name" {
					wantName = strings.Trim(f.yaml, `"`)
				}
			}
			if fe.Enclosure != wantName || fe.Machine != "" {
				t.Errorf("enclosure %q machine %q, want enclosure %q", fe.Enclosure, fe.Machine, wantName)
			}
			msg := fe.Error()
			wantPrefix := fmt.Sprintf("fleet.yaml:%d: ", line)
			if wantName != "" {
				wantPrefix += fmt.Sprintf("enclosure %q: ", wantName)
			}
			wantPrefix += fmt.Sprintf("field %q: ", tc.field)
			if !strings.HasPrefix(msg, wantPrefix) || strings.Contains(msg, "\n") {
				t.Errorf("message %q: want one line starting %q", msg, wantPrefix)
			}
			if errs := fieldErrors(t, err); len(errs) != 1 {
				t.Errorf("want exactly one error, got %d:\n%v", len(errs), err)
			}
		})
	}
}

// A field written as null is not written: a missing field is reported at
// the enclosure's line.
func TestEnclosureNullField(t *testing.T) {
	_, err := parseString(t, YAML, encYAML(withEnc(kv{"slots", "~", ""})))
	if fe := wantError(t, err, 5, "slots"); !strings.Contains(fe.Reason, "missing") {
		t.Errorf("reason %q", fe.Reason)
	}
}

func TestEnclosureStructure(t *testing.T) {
	cases := []struct {
		desc, src string
		line      int
		field     string
		reason    string
	}{
		{"not a list", "enclosures:\n  name: a\n", 2, "enclosures", "must be a list of enclosures"},
		{"a scalar", "enclosures: 3\n", 1, "enclosures", "must be a list of enclosures"},
		{"given twice", "enclosures: []\nenclosures: []\n", 2, "enclosures", "given twice"},
		{"item not a mapping", "enclosures:\n  - chassis-1\n", 2, "", "enclosure #1 must be a mapping"},
		{"empty item", "enclosures:\n  -\n", 2, "", "enclosure #1 is empty"},
		{"field given twice", "enclosures:\n  - name: a\n    address: b\n    slots: 1\n    slots: 2\n", 5, "slots", "given twice"},
		{"unknown top-level field", "enclosure:\n  - name: a\n", 1, "enclosure", "want defaults, enclosures or machines"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := parseString(t, YAML, tc.src)
			fe := wantError(t, err, tc.line, tc.field)
			if !strings.Contains(fe.Reason, tc.reason) {
				t.Errorf("reason %q does not mention %q", fe.Reason, tc.reason)
			}
		})
	}
}

func TestEnclosuresParsed(t *testing.T) {
	src := `defaults:
  user: ops                 # machines only
  password_env: FLEET_PW
enclosures:
  - &cmc
    name: chassis-1
    address: cmc-1.mgmt.example.com
    port: 6230
    user: admin
    protocol: ipmi
    password_file: secrets/cmc.pw
    slots: 16
  - <<: *cmc
    name: chassis-2
    address: fd00:9::2
    port:                   # null: not set, so not merged either
    slots: "8"
  - {name: chassis-3, address: 10.0.9.3, password_env: CMC3_PW, slots: 64}
machines: []
`
	inv := mustParse(t, YAML, src)
	want := []Enclosure{
		{Name: "chassis-1", Address: "cmc-1.mgmt.example.com", Port: 6230, User: "admin", Protocol: "ipmi", PasswordFile: "secrets/cmc.pw", Slots: 16, Line: 5},
		{Name: "chassis-2", Address: "fd00:9::2", User: "admin", Protocol: "ipmi", PasswordFile: "secrets/cmc.pw", Slots: 8, Line: 13},
		{Name: "chassis-3", Address: "10.0.9.3", PasswordEnv: "CMC3_PW", Slots: 64, Line: 18},
	}
	if !reflect.DeepEqual(inv.Enclosures, want) {
		t.Errorf("got\n%+v\nwant\n%+v", inv.Enclosures, want)
	}
	if hp := inv.Enclosures[1].HostPort(); hp != "[fd00:9::2]:623" {
		t.Errorf("HostPort = %s", hp)
	}
	if e := inv.Enclosures[2]; e.HostPort() != "10.0.9.3:623" || e.EffectiveProtocol() != ProtocolIPMI {
		t.Errorf("defaults: %s %s", e.HostPort(), e.EffectiveProtocol())
	}
	// A Redfish enclosure manager: kind redfish implies protocol redfish
	// and its port 443.
	rf := mustParse(t, YAML, "enclosures:\n  - {name: mx-1, address: 10.0.9.9, kind: redfish, slots: 8}\nmachines: []\n")
	if e := rf.Enclosures[0]; e.Kind != KindRedfish || e.EffectiveProtocol() != ProtocolRedfish || e.HostPort() != "10.0.9.9:443" {
		t.Errorf("kind redfish: %+v %s %s", e, e.EffectiveProtocol(), e.HostPort())
	}
	if inv := mustParse(t, YAML, "enclosures:\nmachines: []\n"); inv.Enclosures != nil {
		t.Errorf("null enclosures: %+v", inv.Enclosures)
	}
	if inv := mustParse(t, YAML, "enclosures: []\n"); len(inv.Enclosures)+len(inv.Machines) != 0 {
		t.Errorf("empty enclosures: %+v", inv)
	}
}

// TestEnclosureCrossChecks covers the rules between machines and
// enclosures: a slot within the enclosure's slots, one machine per slot.
func TestEnclosureCrossChecks(t *testing.T) {
	const encs = `enclosures:
  - name: chassis-1
    address: 10.0.9.1
    slots: 4
  - name: chassis-2
    address: 10.0.9.2
    slots: %d
machines:
`
	// machine renders a machine at line 9 + 4*i.
	machine := func(name, enclosure string, slot int) string {
		return fmt.Sprintf("  - name: %s\n    address: %s.example.com\n    enclosure: %s\n    slot: %d\n", name, name, enclosure, slot)
	}
	slotLine := func(i int) int { return 9 + 4*i + 3 }
	type wantErr struct {
		line    int
		machine string
		reason  string
	}
	cases := []struct {
		desc     string
		machines []string
		errs     []wantErr
	}{
		{"last slot", []string{machine("a", "chassis-1", 4)}, nil},
		{"beyond the slots", []string{machine("a", "chassis-1", 5)},
			[]wantErr{{slotLine(0), "a", `"5" is beyond the 4 slots of enclosure "chassis-1" (line 2)`}}},
		{"same slot", []string{machine("a", "chassis-1", 2), machine("b", "chassis-1", 3), machine("c", "chassis-1", 2)},
			[]wantErr{{slotLine(2), "c", `"2" in enclosure "chassis-1" is already taken by machine "a" (line 9)`}}},
		{"same slot, three machines", []string{machine("a", "chassis-1", 2), machine("b", "chassis-1", 2), machine("c", "chassis-1", 2)},
			[]wantErr{{slotLine(1), "b", `taken by machine "a"`}, {slotLine(2), "c", `taken by machine "a"`}}},
		{"same slot, other enclosures", []string{machine("a", "chassis-1", 2), machine("b", "rack-9", 2), machine("c", "Chassis-1", 2)}, nil},
		{"undefined enclosure, any slot", []string{machine("a", "rack-9", 500)}, nil},
		{"undefined enclosure, same slot", []string{machine("a", "rack-9", 7), machine("b", "rack-9", 7)},
			[]wantErr{{slotLine(1), "b", `"7" in enclosure "rack-9" is already taken by machine "a"`}}},
		{"enclosure names are case-sensitive", []string{machine("a", "CHASSIS-1", 9)}, nil},
		{"beyond is not also taken", []string{machine("a", "chassis-1", 9), machine("b", "chassis-1", 9)},
			[]wantErr{{slotLine(0), "a", "beyond the 4 slots"}, {slotLine(1), "b", "beyond the 4 slots"}}},
		{"bad slot reported once", []string{machine("a", "chassis-1", -1), machine("b", "chassis-1", -1)},
			[]wantErr{{slotLine(0), "a", "negative"}, {slotLine(1), "b", "negative"}}},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			src := fmt.Sprintf(encs, 8) + strings.Join(tc.machines, "")
			inv, err := parseString(t, YAML, src)
			if tc.errs == nil {
				if err != nil {
					t.Fatalf("unexpected error:\n%v\n%s", err, src)
				}
				if len(inv.Machines) != len(tc.machines) {
					t.Errorf("%d machines", len(inv.Machines))
				}
				return
			}
			errs := fieldErrors(t, err)
			if len(errs) != len(tc.errs) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tc.errs), err)
			}
			for i, w := range tc.errs {
				e := errs[i]
				if e.Line != w.line || e.Machine != w.machine || !strings.Contains(e.Error(), w.reason) {
					t.Errorf("error %d = %v\nwant line %d machine %q mentioning %q", i, e, w.line, w.machine, w.reason)
				}
				if w.machine != "" && e.Field != "slot" {
					t.Errorf("error %d is on field %q, want slot", i, e.Field)
				}
			}
		})
	}

	// An enclosure whose slots are wrong is reported once, not against
	// its machines.
	_, err := parseString(t, YAML, fmt.Sprintf(encs, 99)+machine("a", "chassis-2", 80))
	if errs := fieldErrors(t, err); len(errs) != 1 || errs[0].Line != 7 || errs[0].Enclosure != "chassis-2" || errs[0].Field != "slots" {
		t.Errorf("bad slots: %v", err)
	}

	// CSV has no enclosures, but still one machine per slot.
	_, err = parseString(t, CSV, "name,address,enclosure,slot\na,10.0.0.1,c1,1\nb,10.0.0.2,c1,2\nc,10.0.0.3,c1,1\n")
	if fe := wantError(t, err, 4, "slot"); fe.Machine != "c" || !strings.Contains(fe.Reason, `already taken by machine "a" (line 2)`) {
		t.Errorf("CSV: %v", fe)
	}
}

func TestValidateEnclosures(t *testing.T) {
	inv := &Inventory{
		Enclosures: []Enclosure{
			{Name: "c1", Address: "10.0.9.1", Slots: 2},
			{Name: "c1", Address: "10.0.9.2", Slots: 2},
			{Name: "c3", Address: "10.0.9.3"},
		},
		Machines: []Machine{
			{Name: "a", Address: "10.0.0.1", Enclosure: "c1", Slot: 3},
			{Name: "b", Address: "10.0.0.2", Enclosure: "x", Slot: 1},
			{Name: "c", Address: "10.0.0.3", Enclosure: "x", Slot: 1},
		},
	}
	err := inv.Validate()
	errs := fieldErrors(t, err)
	want := []string{
		`enclosure "c1": field "name": "c1" is already used by enclosure #1`,
		`enclosure "c3": field "slots": missing`,
		`machine "a": field "slot": "3" is beyond the 2 slots of enclosure "c1"`,
		`machine "c": field "slot": "1" in enclosure "x" is already taken by machine "b"`,
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if got := errs[i].Error(); !strings.HasPrefix(got, w) {
			t.Errorf("error %d = %s\nwant %s...", i, got, w)
		}
	}
	for _, format := range []Format{YAML, CSV} {
		var buf bytes.Buffer
		if err := Write(&buf, format, inv); err == nil || buf.Len() != 0 {
			t.Errorf("%v: wrote an invalid inventory (%v)", format, err)
		}
	}
}

// full has every field of machines and enclosures, with strings chosen to
// trip up YAML and CSV quoting.
var full = &Inventory{
	Enclosures: []Enclosure{
		{Name: "chassis-1", Address: "10.0.9.1", Port: 6230, User: "admin: root", Protocol: "ipmi", PasswordFile: "secrets/cmc 1.pw", Slots: 16},
		{Name: "null", Address: "fd00:9::2", User: "~", PasswordEnv: "CMC_2_PW", Slots: 1},
		{Name: "0x10", Address: "cmc-3.example.com.", Slots: 64},
	},
	Machines: []Machine{
		{Name: "node-1", GUID: "04030201-0605-0807-090a-0b0c0d0e0f10", Address: "10.0.0.1", Port: 6231, User: "ops",
			Protocol: "redfish", PasswordFile: "pw/node 1", CipherSuite: 3, Privilege: "user", Enclosure: "chassis-1", Slot: 16,
			Group: "g.1", Role: "db primary, \"hot\"", Tags: []string{"gpu", "a, b", "[x]", "{y: z}", "- w", "#v", "no", "null", "ключ"}, Spare: true},
		{Name: "node-2", Address: "10.0.0.2", Enclosure: "null", Slot: 1, Privilege: "operator", Role: "'q'", Tags: []string{"&a", "*b", "!c", "%d", "@e", "`f`"}},
		{Name: "node-3", Address: "10.0.0.3", Enclosure: "0x10", Slot: 1, Privilege: "administrator", Group: "true"},
		{Name: "node-4", Address: "10.0.0.4", Enclosure: "not-listed", Slot: 99, Spare: true, Tags: []string{"1e3"}},
		{Name: "node-5", Address: "10.0.0.5", PasswordEnv: "PW"},
	},
}

func withoutEnclosureLines(es []Enclosure) []Enclosure {
	out := append([]Enclosure(nil), es...)
	for i := range out {
		out[i].Line = 0
	}
	return out
}

func TestRoundTripEnclosuresAndNewFields(t *testing.T) {
	if err := full.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, format := range []Format{YAML, CSV} {
		t.Run(format.String(), func(t *testing.T) {
			var out bytes.Buffer
			if err := Write(&out, format, full); err != nil {
				t.Fatal(err)
			}
			back := mustParse(t, format, out.String())
			if !reflect.DeepEqual(withoutLines(back.Machines), full.Machines) {
				t.Errorf("machines changed:\n%s\ngot  %+v\nwant %+v", out.String(), back.Machines, full.Machines)
			}
			wantEnc := full.Enclosures
			if format == CSV {
				wantEnc = nil // CSV carries machines only
			}
			if !reflect.DeepEqual(withoutEnclosureLines(back.Enclosures), withoutEnclosureLines(wantEnc)) {
				t.Errorf("enclosures changed:\n%s\ngot  %+v\nwant %+v", out.String(), back.Enclosures, wantEnc)
			}
			for i, e := range back.Enclosures {
				if e.Line == 0 {
					t.Errorf("enclosure %d has no line", i)
				}
			}
			var again bytes.Buffer
			if err := Write(&again, format, back); err != nil {
				t.Fatal(err)
			}
			if again.String() != out.String() {
				t.Errorf("second write differs:\n%s\nvs\n%s", again.String(), out.String())
			}
		})
	}

	// Save and Load keep everything in YAML.
	path := filepath.Join(t.TempDir(), "fleet.yaml")
	if err := Save(path, full); err != nil {
		t.Fatal(err)
	}
	inv, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(withoutEnclosureLines(inv.Enclosures), full.Enclosures) || !reflect.DeepEqual(withoutLines(inv.Machines), full.Machines) {
		t.Errorf("Load(Save) changed the inventory")
	}
}

func TestYAMLWritesEnclosuresFirst(t *testing.T) {
	inv := &Inventory{
		Enclosures: []Enclosure{{Name: "c1", Address: "10.0.9.1", Slots: 2}},
		Machines:   []Machine{{Name: "a", Address: "10.0.0.1", Enclosure: "c1", Slot: 2}},
	}
	var buf bytes.Buffer
	if err := WriteYAML(&buf, inv); err != nil {
		t.Fatal(err)
	}
	want := `enclosures:
  - name: c1
    address: 10.0.9.1
    slots: 2
machines:
  - name: a
    address: 10.0.0.1
    enclosure: c1
    slot: 2
`
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestEnclosurePassword(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cmc.pw"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CMC_PW", secret)
	t.Setenv("CMC_EMPTY", "")

	for _, e := range []Enclosure{{Name: "c1", PasswordFile: "cmc.pw"}, {Name: "c2", PasswordEnv: "CMC_PW"}} {
		pw, err := e.Password(dir)
		if err != nil || string(pw) != secret {
			t.Errorf("%s: %q, %v", e.Name, pw, err)
		}
	}
	for _, tc := range []struct {
		e    Enclosure
		want string
	}{
		{Enclosure{Name: "c3", PasswordFile: "missing.pw"}, `enclosure "c3": password_file: `},
		{Enclosure{Name: "c4", PasswordEnv: "CMC_UNSET_XYZ"}, `enclosure "c4": password_env: environment variable CMC_UNSET_XYZ is not set`},
		{Enclosure{Name: "c5", PasswordEnv: "CMC_EMPTY"}, "is empty"},
		{Enclosure{Name: "c6", PasswordFile: "cmc.pw", PasswordEnv: "CMC_PW"}, "give only one"},
	} {
		_, err := tc.e.Password(dir)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), secret) {
			t.Errorf("%s: %v; want it to mention %q", tc.e.Name, err, tc.want)
		}
	}
	if _, err := (Enclosure{Name: "c7"}).Password(dir); !errors.Is(err, ErrNoPassword) || !strings.Contains(err.Error(), `enclosure "c7"`) {
		t.Errorf("no source: %v", err)
	}

	// Passwords reads each file once, for machines and enclosures alike.
	p := &Passwords{Dir: dir}
	if pw, err := p.OfEnclosure(Enclosure{Name: "c1", PasswordFile: "cmc.pw"}); err != nil || string(pw) != secret {
		t.Fatalf("OfEnclosure: %q, %v", pw, err)
	}
	if err := os.Remove(filepath.Join(dir, "cmc.pw")); err != nil {
		t.Fatal(err)
	}
	if pw, err := p.Of(Machine{Name: "m", PasswordFile: "cmc.pw"}); err != nil || string(pw) != secret {
		t.Errorf("Of after OfEnclosure read the file again: %q, %v", pw, err)
	}
	if pw, err := p.OfEnclosure(Enclosure{Name: "c2", PasswordEnv: "CMC_PW"}); err != nil || string(pw) != secret {
		t.Errorf("OfEnclosure env: %q, %v", pw, err)
	}
	if _, err := p.OfEnclosure(Enclosure{Name: "c9"}); !errors.Is(err, ErrNoPassword) {
		t.Errorf("OfEnclosure no source: %v", err)
	}
}

func TestFieldErrorEnclosureMessage(t *testing.T) {
	fe := &FieldError{Source: "fleet.yaml", Line: 4, Enclosure: "chassis-1", Field: "slots", Value: "65", Reason: "is not a number of slots (1-64)"}
	if got, want := fe.Error(), `fleet.yaml:4: enclosure "chassis-1": field "slots": "65" is not a number of slots (1-64)`; got != want {
		t.Errorf("Error() = %s\nwant      %s", got, want)
	}
}

// TestEnclosureKind: an enclosure of kind ipmb with its slot-to-address
// rule reads back as written (the fast YAML path and yaml.v3 alike).
func TestEnclosureKind(t *testing.T) {
	src := encYAML([]kv{v("name", "shelf-1"), v("address", "10.0.9.7"), v("slots", "3"), v("kind", "ipmb"), v("ipmb", `"0x82,0x84,0x8a"`)})
	inv, err := parseString(t, YAML, src)
	if err != nil {
		t.Fatal(err)
	}
	var e *Enclosure
	for i := range inv.Enclosures {
		if inv.Enclosures[i].Name == "shelf-1" {
			e = &inv.Enclosures[i]
		}
	}
	if e == nil || e.Kind != KindIPMB || e.IPMB != "0x82,0x84,0x8a" {
		t.Fatalf("enclosure %+v", e)
	}
}
