package inventory

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDefaults(t *testing.T) {
	src := `defaults:
  port: 6230
  user: ops
  protocol: redfish
  password_env: FLEET_PW
  cipher_suite: 17
machines:
  - name: plain
    address: 10.0.0.1
  - name: own
    address: 10.0.0.2
    port: 623
    user: root
    protocol: ipmi
    cipher_suite: 3
  - name: own-file
    address: 10.0.0.3
    password_file: pw/own-file
  - name: explicit-zero
    address: 10.0.0.4
    port: 0
    cipher_suite: 0
  - name: null-is-unset
    address: 10.0.0.5
    user:
`
	inv := mustParse(t, YAML, src)
	want := []Machine{
		{Name: "plain", Address: "10.0.0.1", Port: 6230, User: "ops", Protocol: "redfish", PasswordEnv: "FLEET_PW", CipherSuite: 17, Line: 8},
		{Name: "own", Address: "10.0.0.2", Port: 623, User: "root", Protocol: "ipmi", PasswordEnv: "FLEET_PW", CipherSuite: 3, Line: 10},
		// A machine naming a password file does not also get the default variable.
		{Name: "own-file", Address: "10.0.0.3", Port: 6230, User: "ops", Protocol: "redfish", PasswordFile: "pw/own-file", CipherSuite: 17, Line: 16},
		// A field written, even as 0, overrides the default.
		{Name: "explicit-zero", Address: "10.0.0.4", User: "ops", Protocol: "redfish", PasswordEnv: "FLEET_PW", Line: 19},
		{Name: "null-is-unset", Address: "10.0.0.5", Port: 6230, User: "ops", Protocol: "redfish", PasswordEnv: "FLEET_PW", CipherSuite: 17, Line: 23},
	}
	if !reflect.DeepEqual(inv.Machines, want) {
		t.Errorf("got\n%+v\nwant\n%+v", inv.Machines, want)
	}
	// Port 0 is the protocol's port: this machine is Redfish (defaults),
	// so HTTPS's 443, not IPMI's 623.
	if hp := inv.Machines[3].HostPort(); hp != "10.0.0.4:443" {
		t.Errorf("explicit port 0: HostPort = %s", hp)
	}

	// Defaults are applied, not kept: the written file has none, and
	// parses back to the same machines.
	var buf bytes.Buffer
	if err := WriteYAML(&buf, inv); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "defaults") {
		t.Errorf("defaults written:\n%s", buf.String())
	}
	back := mustParse(t, YAML, buf.String())
	if !reflect.DeepEqual(withoutLines(back.Machines), withoutLines(inv.Machines)) {
		t.Errorf("round trip through defaults changed machines:\n%s", buf.String())
	}
}

func TestDefaultsErrorsReportedOnce(t *testing.T) {
	src := `defaults:
  port: 99999
  protocol: ftp
  password_env: 1X
  cipher_suite: many
machines:
  - name: a
    address: 10.0.0.1
  - name: b
    address: 10.0.0.2
`
	_, err := parseString(t, YAML, src)
	errs := fieldErrors(t, err)
	for _, w := range []struct {
		line  int
		field string
	}{{2, "defaults.port"}, {3, "defaults.protocol"}, {4, "defaults.password_env"}, {5, "defaults.cipher_suite"}} {
		fe := wantError(t, err, w.line, w.field)
		if fe.Machine != "" {
			t.Errorf("%s: machine %q, want none", w.field, fe.Machine)
		}
	}
	if len(errs) != 4 {
		t.Errorf("want 4 errors (once each, not per machine), got %d:\n%v", len(errs), err)
	}

	_, err = parseString(t, YAML, "defaults:\n  password_file: pw\n  password_env: PW\nmachines: []\n")
	wantError(t, err, 3, "defaults.password_env")
}

func TestHostPort(t *testing.T) {
	for _, tc := range []struct {
		m    Machine
		want string
	}{
		{Machine{Address: "10.0.0.1"}, "10.0.0.1:623"},
		{Machine{Address: "bmc1.example.com", Port: 6230}, "bmc1.example.com:6230"},
		{Machine{Address: "fd00::1"}, "[fd00::1]:623"},
		{Machine{Address: "fe80::1%eth0", Port: 1623}, "[fe80::1%eth0]:1623"},
		// A Redfish machine without a port is on HTTPS's (it was 623, and
		// the check command patched it).
		{Machine{Address: "10.0.0.2", Protocol: ProtocolRedfish}, "10.0.0.2:443"},
		{Machine{Address: "10.0.0.2", Protocol: ProtocolRedfish, Port: 8443}, "10.0.0.2:8443"},
	} {
		if got := tc.m.HostPort(); got != tc.want {
			t.Errorf("%+v: HostPort = %s, want %s", tc.m, got, tc.want)
		}
	}
	if p := (Machine{}).EffectiveProtocol(); p != ProtocolIPMI {
		t.Errorf("EffectiveProtocol = %q", p)
	}
}

// tricky holds every field, with strings chosen to trip up YAML and CSV
// quoting.
var tricky = &Inventory{Machines: []Machine{
	{Name: "node-1", GUID: "04030201-0605-0807-090a-0b0c0d0e0f10", Address: "10.0.0.1", Port: 6230, User: "admin",
		Protocol: "redfish", PasswordFile: "secrets/node 1.pw", CipherSuite: 17, Privilege: "operator", Enclosure: "rack 1, row \"B\"", Slot: 4,
		Group: "null", Role: "db primary, \"hot\"", Tags: []string{"gpu", "rack 1", "x,y", "[a]", "- b", "#c", "yes", "~", "1e3"}, Spare: true},
	{Name: "null", Address: "fd00::2", User: "yes", PasswordEnv: "NODE_2_PW", Enclosure: "#3", Role: "#", Tags: []string{"{a: b}"}},
	{Name: "0123", Address: "bmc-3.example.com.", User: "~", GUID: "0102030405060708090a0b0c0d0e0f10", Enclosure: "- x: y", Privilege: "user", Group: "0123"},
	{Name: "true", Address: "fe80::4%eth0", User: "ключ", PasswordFile: "/etc/lightsout/'q'", Enclosure: "{a: [b]}", Slot: 1, Role: "ключ: 'q'", Tags: []string{"ключ", "&x", "*y", "!z", "'q'", "\"d\""}},
	{Name: "5", Address: "10.0.0.5", User: "@ops", Enclosure: "*alias &anchor !tag %d", CipherSuite: 3, Privilege: "administrator", Spare: true},
	{Name: "n6", Address: "10.0.0.6", User: "1e3", Enclosure: "0x10", PasswordFile: "a:b", Group: "true", Role: "0x10"},
}}

func TestRoundTrip(t *testing.T) {
	writers := map[Format]func(*bytes.Buffer, *Inventory) error{
		YAML: func(b *bytes.Buffer, inv *Inventory) error { return WriteYAML(b, inv) },
		CSV:  func(b *bytes.Buffer, inv *Inventory) error { return WriteCSV(b, inv) },
	}
	for _, format := range []Format{YAML, CSV} {
		t.Run(format.String(), func(t *testing.T) {
			var out bytes.Buffer
			if err := writers[format](&out, tricky); err != nil {
				t.Fatal(err)
			}
			back := mustParse(t, format, out.String())
			if !reflect.DeepEqual(withoutLines(back.Machines), tricky.Machines) {
				t.Errorf("round trip changed machines:\n%s\ngot  %+v\nwant %+v", out.String(), back.Machines, tricky.Machines)
			}
			var again bytes.Buffer
			if err := writers[format](&again, back); err != nil {
				t.Fatal(err)
			}
			if again.String() != out.String() {
				t.Errorf("second write differs:\n%s\nvs\n%s", again.String(), out.String())
			}
			for i, m := range back.Machines {
				if m.Line == 0 {
					t.Errorf("machine %d has no line", i)
				}
			}

			// And across formats.
			other := YAML
			if format == YAML {
				other = CSV
			}
			var cross bytes.Buffer
			if err := writers[other](&cross, back); err != nil {
				t.Fatal(err)
			}
			if got := mustParse(t, other, cross.String()); !reflect.DeepEqual(withoutLines(got.Machines), tricky.Machines) {
				t.Errorf("%v → %v changed machines", format, other)
			}
		})
	}
}

func TestWriteEmpty(t *testing.T) {
	for _, format := range []Format{YAML, CSV} {
		var buf bytes.Buffer
		if err := Write(&buf, format, &Inventory{}); err != nil {
			t.Fatal(err)
		}
		if inv := mustParse(t, format, buf.String()); len(inv.Machines) != 0 {
			t.Errorf("%v: %d machines", format, len(inv.Machines))
		}
	}
}

func TestWriteRefusesInvalid(t *testing.T) {
	inv := &Inventory{Machines: []Machine{{Name: "a", Address: "10.0.0.1"}, {Name: "a", Address: "10.0.0.2", Port: 70000}}}
	for _, format := range []Format{YAML, CSV} {
		var buf bytes.Buffer
		err := Write(&buf, format, inv)
		errs := fieldErrors(t, err)
		if len(errs) != 2 || buf.Len() != 0 {
			t.Errorf("%v: %d errors, %d bytes written: %v", format, len(errs), buf.Len(), err)
		}
		if !strings.Contains(err.Error(), "already used by machine #1") {
			t.Errorf("duplicate message without lines: %v", err)
		}
	}
}

func TestFormatFromPath(t *testing.T) {
	for path, want := range map[string]Format{"a.yaml": YAML, "dir.csv/a.YML": YAML, "/x/fleet.CSV": CSV} {
		if got, err := FormatFromPath(path); err != nil || got != want {
			t.Errorf("%s: %v, %v", path, got, err)
		}
	}
	for path, want := range map[string]string{"fleet.json": `".json"`, "fleet": "no file extension", "fleet.yaml.bak": `".bak"`} {
		if _, err := FormatFromPath(path); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v does not mention %s", path, err, want)
		}
	}
}

func TestLoadSave(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"fleet.yaml", "fleet.yml", "fleet.csv"} {
		path := filepath.Join(dir, name)
		if err := Save(path, tricky); err != nil {
			t.Fatal(err)
		}
		inv, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if inv.Dir != dir {
			t.Errorf("%s: Dir = %q, want %q", name, inv.Dir, dir)
		}
		if !reflect.DeepEqual(withoutLines(inv.Machines), tricky.Machines) {
			t.Errorf("%s: Load(Save) changed machines", name)
		}
	}

	// Save keeps an existing file's mode and leaves no temporary file.
	path := filepath.Join(dir, "fleet.yaml")
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Save(path, tricky); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("directory has %d entries, want 3", len(entries))
	}

	// Errors name the file as given.
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("name,address\nn1,10.0.0.1\nn1,10.0.0.2\n"), 0o644)
	_, err := Load(bad)
	if fe := wantError(t, err, 3, "name"); fe.Source != bad {
		t.Errorf("Source = %q", fe.Source)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "fleet.toml")); err == nil || !strings.Contains(err.Error(), ".toml") {
		t.Errorf("unsupported extension: %v", err)
	}
	if err := Save(filepath.Join(dir, "fleet.txt"), tricky); err == nil {
		t.Error("Save to .txt accepted")
	}
}
