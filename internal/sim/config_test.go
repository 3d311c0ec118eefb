package sim

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodFleet = `# a fleet file
count: 20
seed: 7
password: s3cret-pw
base_addr: 127.1.0.1
session_slots: 2
accounts: {operator: true, user: true}
vendors:
  - {name: dell, manufacturer_id: 674, product_id: 256, firmware: "4.40", weight: 3}
  - {name: hpe, manufacturer_id: 11, firmware: "2.72"}
enclosures:
  - name: enc-01
    blades: 8
  - {name: enc-02, blades: 4, down: true}
faults:
  bmc-00003: {silent: true}
  bmc-00004:
    slow: 1500ms
    lossy: 0.25
  enc-01: {wrong_password: true}
  bmc-00005: {quirk: [no_ping, suite3_only]}
  bmc-00006: {quirk: opensess_0x01}
swaps:
  - [bmc-00010, bmc-00011]
`

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig([]byte(goodFleet))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Count != 20 || cfg.Seed != 7 || cfg.Password != "s3cret-pw" || cfg.SessionSlots != 2 ||
		!cfg.Accounts.Operator || !cfg.Accounts.User || len(cfg.Vendors) != 2 || cfg.Vendors[1].ManufacturerID != 11 ||
		len(cfg.Enclosures) != 2 || !cfg.Enclosures[1].Down || cfg.Enclosures[0].Blades != 8 ||
		!cfg.Faults["bmc-00003"].Silent || cfg.Faults["bmc-00004"].Slow != Duration(1500*time.Millisecond) ||
		cfg.Faults["bmc-00004"].Lossy != 0.25 || !cfg.Faults["enc-01"].WrongPassword ||
		len(cfg.Swaps) != 1 || cfg.Swaps[0][1] != "bmc-00011" ||
		cfg.Faults["bmc-00005"].Quirk != QuirkNoPing|QuirkSuite3Only || cfg.Faults["bmc-00006"].Quirk != QuirkOpenSess01 {
		t.Errorf("parsed %+v", cfg)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, c := range []struct {
		name, yaml, field string
		line              int
		reason            string
	}{
		{"unknown top field", "count: 3\ncolour: blue\n", "colour", 2, "unknown field (known: accounts, base_addr, base_port, count,"},
		{"unknown fault", "count: 3\nfaults:\n  bmc-00001:\n    silnet: true\n", "faults.bmc-00001.silnet", 4, "unknown field"},
		{"unknown enclosure field", "count: 3\nenclosures:\n  - {name: e, blade: 2}\n", "enclosures[0]", 3, "unknown field"},
		{"count type", "count: many\n", "count", 1, "bad value"},
		{"negative count", "count: -4\n", "count", 1, "at least 1"},
		{"rate", "count: 3\nfaults:\n  bmc-00002: {lossy: 1.5}\n", "faults.bmc-00002.lossy", 3, "between 0 and 1"},
		{"duration", "count: 3\nfaults:\n  bmc-00002:\n    slow: forever\n", "faults.bmc-00002.slow", 4, "not a duration"},
		{"slow too long", "count: 3\nfaults:\n  bmc-00002: {slow: 2m}\n", "faults.bmc-00002.slow", 3, "between 0 and 1m0s"},
		{"unknown bmc", "count: 3\nfaults:\n  bmc-00009: {silent: true}\n", "faults.bmc-00009", 3, "no BMC"},
		{"blades", "count: 3\nenclosures:\n  - {name: e, blades: 4}\n", "enclosures", 2, "4 blades"},
		{"enclosure name", "count: 3\nenclosures:\n  - {name: bmc-00001, blades: 1}\n", "enclosures[0].name", 3, "already the name"},
		{"slots", "count: 3\nsession_slots: 99\n", "session_slots", 2, "between 1 and 63"},
		{"base addr", "count: 3\nbase_addr: 192.168.1.10\n", "base_addr", 2, "not a loopback"},
		{"firmware", "count: 3\nvendors:\n  - {name: x, manufacturer_id: 1, firmware: v2}\n", "vendors[0].firmware", 3, "major.minor"},
		{"quirk", "count: 3\nfaults:\n  bmc-00002:\n    quirk: [no_pong]\n", "faults.bmc-00002.quirk", 4, "unknown quirk \"no_pong\" (known: no_ping, suite3_only, opensess_0x01, guid_0xd4, authcap"},
		{"swap", "count: 3\nswaps:\n  - [bmc-00001]\n", "swaps[0]", 3, "exactly two"},
		{"password", "count: 3\npassword: 0123456789012345678901\n", "", 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(c.yaml))
			if c.name == "password" {
				// Checked when the fleet starts (the password may come from a file).
				cfg, _ := ParseConfig([]byte(c.yaml))
				if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "at most 20 bytes") {
					t.Errorf("long password: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a FieldError", err)
			}
			if fe.Field != c.field || fe.Line != c.line || !strings.Contains(fe.Reason, c.reason) {
				t.Errorf("got field %q line %d reason %q; want %q line %d containing %q", fe.Field, fe.Line, fe.Reason, c.field, c.line, c.reason)
			}
		})
	}
}

func TestLoadConfigPasswordFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "fleet.yaml")
	if err := os.WriteFile(path, []byte("count: 2\npassword_file: pw\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	f := newTestFleet(t, cfg, false)
	if f.Password() != "from-file" {
		t.Errorf("password %q", f.Password())
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file loaded")
	}
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("count: 2\nbogus: 1\n"), 0o644)
	if _, err := LoadConfig(bad); err == nil || !strings.Contains(err.Error(), "bad.yaml: line 2: bogus: unknown field") {
		t.Errorf("bad file: %v", err)
	}
}
