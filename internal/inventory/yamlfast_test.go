package inventory

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// genInventory is n machines shaped like the ones `lightsout sim
// --export-inventory` writes. With rich set, the machines also use every
// other field, some sit in enclosures, and the enclosures are listed.
func genInventory(n int, rich bool) *Inventory {
	rng := rand.New(rand.NewPCG(uint64(n), 1))
	inv := &Inventory{Machines: make([]Machine, 0, n)}
	if rich {
		inv.Enclosures = []Enclosure{
			{Name: "chassis-1", Address: "127.202.0.1", Port: 16230, User: "admin", Protocol: ProtocolIPMI, PasswordFile: "/etc/lightsout/fleet.password", Slots: 16},
			{Name: "chassis-2", Address: "cmc2.example.com", PasswordEnv: "CMC_PW", Slots: 8},
		}
	}
	for i := range n {
		m := Machine{
			Name: fmt.Sprintf("bmc-%05d", i+1),
			GUID: fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", rng.Uint32(), rng.Uint32()&0xffff,
				rng.Uint32()&0xfff, 0x8000|rng.Uint32()&0x3fff, rng.Uint64()&(1<<48-1)),
			Address:      fmt.Sprintf("127.201.%d.%d", (i+1)/256, (i+1)%256),
			Port:         623,
			User:         "admin",
			Protocol:     ProtocolIPMI,
			PasswordFile: "fleet.password",
		}
		if rich {
			switch i % 4 {
			case 0:
				// 16 machines to an enclosure; the first is listed.
				m.Enclosure, m.Slot = fmt.Sprintf("rack-%d", i/64), i/4%16+1
				if i < 64 {
					m.Enclosure = "chassis-1"
				}
				m.Tags = []string{"gpu", "rack 1", "x-y.z"}
			case 1:
				m.Address = fmt.Sprintf("fd00::%x", i+1)
				m.Protocol, m.Port, m.CipherSuite = ProtocolRedfish, 443, 0
				m.PasswordFile, m.PasswordEnv = "", "FLEET_PW"
				m.Spare = true
			case 2:
				m.Address = fmt.Sprintf("bmc-%d.example.com", i+1)
				m.CipherSuite, m.Privilege, m.Group, m.Role = 17, PrivilegeOperator, "g-1", "db primary (old)"
				m.GUID = ""
			case 3:
				m.Enclosure = "rack-9" // not listed: no slot check
				m.Tags = []string{"a"}
			}
		}
		inv.Machines = append(inv.Machines, m)
	}
	return inv
}

func writeYAMLBytes(tb testing.TB, inv *Inventory) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := WriteYAML(&buf, inv); err != nil {
		tb.Fatalf("WriteYAML: %v", err)
	}
	return buf.Bytes()
}

// checkFastPath asserts that, when the fast path accepts data, it produces
// exactly what parseYAML does (no problems, deep-equal entries) and Parse
// returns the same with and without it. It reports whether the fast path
// accepted.
func checkFastPath(t *testing.T, data []byte) bool {
	t.Helper()
	entries, encs, ok := parseYAMLFast(data)
	if !ok {
		if entries != nil || encs != nil {
			t.Fatalf("fast path refused but returned entries")
		}
		return false
	}
	c := &collector{source: "x"}
	wantEntries, wantEncs := parseYAML(c, data)
	if len(c.errs) > 0 {
		t.Fatalf("fast path accepted input on which yaml.v3 reports problems:\n%q\n%v", data, c.errs)
	}
	if !reflect.DeepEqual(entries, wantEntries) {
		t.Fatalf("machines differ for\n%q", data)
	}
	if !reflect.DeepEqual(encs, wantEncs) {
		t.Fatalf("enclosures differ for\n%q", data)
	}
	fastInv, fastErr := parseData(data, YAML, "fleet.yaml", true)
	slowInv, slowErr := parseData(data, YAML, "fleet.yaml", false)
	if !reflect.DeepEqual(fastInv, slowInv) {
		t.Fatalf("inventories differ for\n%q\nfast: %+v\nyaml.v3: %+v", data, fastInv, slowInv)
	}
	if fmt.Sprint(fastErr) != fmt.Sprint(slowErr) {
		t.Fatalf("errors differ for\n%q\nfast: %v\nyaml.v3: %v", data, fastErr, slowErr)
	}
	return true
}

func TestYAMLFastPathAcceptsWriterOutput(t *testing.T) {
	for _, rich := range []bool{false, true} {
		inv := genInventory(1000, rich)
		data := writeYAMLBytes(t, inv)
		if !checkFastPath(t, data) {
			t.Fatalf("rich=%v: fast path refused WriteYAML's output:\n%.600s", rich, data)
		}
		got, err := Parse(bytes.NewReader(data), YAML, "fleet.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(withoutLines(got.Machines), inv.Machines) {
			t.Fatalf("rich=%v: machines do not round-trip", rich)
		}
		if len(got.Machines) != 1000 || got.Machines[999].Line == 0 {
			t.Fatalf("rich=%v: bad machines: %d", rich, len(got.Machines))
		}
	}
}

// fastPathCases are inputs with whether the fast path should take them.
// Either way, checkFastPath compares it with yaml.v3.
var fastPathCases = []struct {
	name string
	src  string
	fast bool
}{
	{"sample", "machines:\n  - name: bmc-00001\n    guid: 65815355-5aa8-4bc8-9211-6038f47cd379\n    address: 127.201.0.1\n    port: 623\n    user: admin\n    protocol: ipmi\n    password_file: fleet.password\n  - name: bmc-00002\n    address: 127.201.0.2\n", true},
	{"no final newline", "machines:\n  - name: a\n    address: 10.0.0.1", true},
	{"dash unindented", "machines:\n- name: a\n  address: 10.0.0.1\n- name: b\n  address: 10.0.0.2\n", true},
	{"dash indented 4", "machines:\n    - name: a\n      address: 10.0.0.1\n", true},
	{"blank lines", "\nmachines:\n\n  - name: a\n\n    address: 10.0.0.1\n\n", true},
	{"enclosures after machines", "machines:\n  - name: a\n    address: 10.0.0.1\n    enclosure: c\n    slot: 2\nenclosures:\n  - name: c\n    address: 10.0.0.9\n    slots: 4\n", true},
	{"enclosures only", "enclosures:\n  - name: c\n    address: 10.0.0.9\n    slots: 4\n", true},
	{"all fields", "machines:\n  - name: a\n    guid: 65815355-5aa8-4bc8-9211-6038f47cd379\n    address: fd00::1\n    port: 6230\n    user: admin\n    protocol: redfish\n    password_env: PW\n    cipher_suite: 17\n    privilege: OPERATOR\n    enclosure: c1\n    slot: 3\n    group: g\n    role: db primary (old)\n    tags: [gpu, rack 1, x-y]\n    spare: Yes\n", true},
	{"empty tags", "machines:\n  - name: a\n    address: 10.0.0.1\n    tags: []\n", true},
	{"validation errors", "machines:\n  - name: a\n    address: 10.0.0.1:623\n    port: 99999\n    protocol: http\n  - name: a\n    address: 10.0.0.1\n    slot: -1\n    password_file: f\n    password_env: 1PW\n", true},
	{"bool words", "machines:\n  - name: a\n    address: 10.0.0.1\n    spare: no\n    user: yes\n    role: true\n", true},
	{"string that looks numeric", "machines:\n  - name: 1e3\n    address: 10.0.0.1\n    user: 0x1f\n    group: 0123\n    role: .inf\n", true},
	{"slot beyond enclosure", "enclosures:\n  - name: c\n    address: 10.0.0.9\n    slots: 2\nmachines:\n  - name: a\n    address: 10.0.0.1\n    enclosure: c\n    slot: 3\n", true},

	{"quoted value", "machines:\n  - name: \"a\"\n    address: 10.0.0.1\n", false},
	{"single-quoted value", "machines:\n  - name: 'a'\n    address: 10.0.0.1\n", false},
	{"comment line", "# fleet\nmachines:\n  - name: a\n    address: 10.0.0.1\n", false},
	{"trailing comment", "machines:\n  - name: a # first\n    address: 10.0.0.1\n", false},
	{"anchor", "machines:\n  - &m\n    name: a\n    address: 10.0.0.1\n  - <<: *m\n    name: b\n", false},
	{"anchor on value", "machines:\n  - name: &n a\n    address: 10.0.0.1\n", false},
	{"alias value", "machines:\n  - name: *n\n", false},
	{"merge key", "machines:\n  - <<: {port: 1}\n    name: a\n", false},
	{"flow mapping", "machines:\n  - {name: a, address: 10.0.0.1}\n", false},
	{"flow list machines", "machines: [{name: a}]\n", false},
	{"empty list", "machines: []\n", false},
	{"null machines", "machines:\n", false},
	{"tab", "machines:\n\t- name: a\n", false},
	{"tab in value", "machines:\n  - name: a\tb\n    address: 10.0.0.1\n", false},
	{"document start", "---\nmachines:\n  - name: a\n    address: 10.0.0.1\n", false},
	{"document end", "machines:\n  - name: a\n    address: 10.0.0.1\n...\n", false},
	{"second document", "machines:\n  - name: a\n    address: 10.0.0.1\n---\nmachines:\n  - name: b\n", false},
	{"multi-line scalar", "machines:\n  - name: a\n    role: db\n      primary\n    address: 10.0.0.1\n", false},
	{"block scalar", "machines:\n  - name: a\n    role: |\n      db\n    address: 10.0.0.1\n", false},
	{"folded scalar", "machines:\n  - name: a\n    role: >\n      db\n", false},
	{"uneven indentation", "machines:\n  - name: a\n     address: 10.0.0.1\n", false},
	{"item on its own line", "machines:\n  -\n    name: a\n    address: 10.0.0.1\n", false},
	{"mixed dash indentation", "machines:\n  - name: a\n    address: 10.0.0.1\n    - name: b\n", false},
	{"duplicate key", "machines:\n  - name: a\n    name: b\n    address: 10.0.0.1\n", false},
	{"duplicate top-level key", "machines:\n  - name: a\n    address: 10.0.0.1\nmachines:\n  - name: b\n    address: 10.0.0.2\n", false},
	{"unknown key", "machines:\n  - name: a\n    address: 10.0.0.1\n    colour: red\n", false},
	{"enclosure key on machine", "machines:\n  - name: a\n    address: 10.0.0.1\n    slots: 4\n", false},
	{"defaults", "defaults:\n  port: 6230\nmachines:\n  - name: a\n    address: 10.0.0.1\n", false},
	{"null value", "machines:\n  - name: a\n    address: 10.0.0.1\n    user: null\n", false},
	{"tilde", "machines:\n  - name: a\n    address: 10.0.0.1\n    user: ~\n", false},
	{"empty value", "machines:\n  - name: a\n    address: 10.0.0.1\n    user:\n", false},
	{"bool in int", "machines:\n  - name: a\n    address: 10.0.0.1\n    port: true\n", false},
	{"hex int", "machines:\n  - name: a\n    address: 10.0.0.1\n    port: 0x26f\n", false},
	{"octal int", "machines:\n  - name: a\n    address: 10.0.0.1\n    port: 0o1157\n", false},
	{"leading zero int", "machines:\n  - name: a\n    address: 10.0.0.1\n    port: 0623\n", false},
	{"float int", "machines:\n  - name: a\n    address: 10.0.0.1\n    port: 1e3\n", false},
	{"plus int", "machines:\n  - name: a\n    address: 10.0.0.1\n    port: +623\n", false},
	{"underscore int", "machines:\n  - name: a\n    address: 10.0.0.1\n    port: 6_23\n", false},
	{"huge int", "machines:\n  - name: a\n    address: 10.0.0.1\n    port: 99999999999999999999\n", false},
	{"inf", "machines:\n  - name: a\n    address: 10.0.0.1\n    port: .inf\n", false},
	{"on as bool", "machines:\n  - name: a\n    address: 10.0.0.1\n    spare: on\n", false},
	{"indicator start", "machines:\n  - name: a\n    address: 10.0.0.1\n    role: -x\n", false},
	{"percent", "machines:\n  - name: a\n    address: 10.0.0.1\n    role: %x\n", false},
	{"tag", "machines:\n  - name: !!str a\n    address: 10.0.0.1\n", false},
	{"trailing space", "machines:\n  - name: a \n    address: 10.0.0.1\n", false},
	{"trailing space after key", "machines: \n  - name: a\n    address: 10.0.0.1\n", false},
	{"space-only line", "machines:\n  \n  - name: a\n    address: 10.0.0.1\n", false},
	{"CRLF", "machines:\r\n  - name: a\r\n    address: 10.0.0.1\r\n", false},
	{"BOM", "\ufeffmachines:\n  - name: a\n    address: 10.0.0.1\n", false},
	{"non-ASCII", "machines:\n  - name: a\n    address: 10.0.0.1\n    role: café\n", false},
	{"colon space in value", "machines:\n  - name: a\n    address: 10.0.0.1\n    role: a: b\n", false},
	{"colon at end", "machines:\n  - name: a\n    address: 10.0.0.1\n    role: a:\n", false},
	{"block tags", "machines:\n  - name: a\n    address: 10.0.0.1\n    tags:\n      - x\n", false},
	{"null tag", "machines:\n  - name: a\n    address: 10.0.0.1\n    tags: [x, null]\n", false},
	{"quoted tag", "machines:\n  - name: a\n    address: 10.0.0.1\n    tags: [\"yes\"]\n", false},
	{"nested tag list", "machines:\n  - name: a\n    address: 10.0.0.1\n    tags: [x, [y]]\n", false},
	{"tags spaced", "machines:\n  - name: a\n    address: 10.0.0.1\n    tags: [ x ]\n", false},
	{"tags without space", "machines:\n  - name: a\n    address: 10.0.0.1\n    tags: [x,y]\n", false},
	{"list in text field", "machines:\n  - name: a\n    address: [10.0.0.1]\n", false},
	{"not a list", "machines:\n  name: a\n", false},
	{"top level list", "- name: a\n", false},
	{"directive", "%YAML 1.1\n---\nmachines:\n  - name: a\n", false},
	{"empty", "", false},
	{"only blank lines", "\n\n", false},
}

func TestYAMLFastPathTable(t *testing.T) {
	for _, tc := range fastPathCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkFastPath(t, []byte(tc.src)); got != tc.fast {
				t.Errorf("fast path took it: %v, want %v\n%s", got, tc.fast, tc.src)
			}
		})
	}
}

// corpusInputs reads the []byte inputs of go test -fuzz corpus files in
// dir, skipping anything else.
func corpusInputs(tb testing.TB, dir string) [][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" {
			continue
		}
		arg, ok := strings.CutPrefix(lines[1], "[]byte(")
		if !ok {
			continue
		}
		if s, err := strconv.Unquote(strings.TrimSuffix(arg, ")")); err == nil {
			out = append(out, []byte(s))
		}
	}
	return out
}

// FuzzYAMLFastPath checks, for arbitrary input, that whenever the fast
// path takes it, it yields exactly what the yaml.v3 path does.
func FuzzYAMLFastPath(f *testing.F) {
	for _, tc := range fastPathCases {
		f.Add([]byte(tc.src))
	}
	for _, data := range corpusInputs(f, filepath.Join("testdata", "fuzz", "FuzzParseYAML")) {
		f.Add(data)
	}
	for _, n := range []int{1, 3, 12} {
		f.Add(writeYAMLBytes(f, genInventory(n, false)))
		f.Add(writeYAMLBytes(f, genInventory(n, true)))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkFastPath(t, data) })
}

// BenchmarkParseYAML10k parses 10,000 machines as WriteYAML writes them,
// with the fast path and with yaml.v3 alone.
func BenchmarkParseYAML10k(b *testing.B) {
	data := writeYAMLBytes(b, genInventory(10000, false))
	if _, _, ok := parseYAMLFast(data); !ok {
		b.Fatal("fast path refuses the input")
	}
	for _, bc := range []struct {
		name string
		fast bool
	}{{"fast", true}, {"yaml.v3", false}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := parseData(data, YAML, "fleet.yaml", bc.fast); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseYAML10kParseOnly is BenchmarkParseYAML10k without
// validation: the YAML reading alone.
func BenchmarkParseYAML10kParseOnly(b *testing.B) {
	data := writeYAMLBytes(b, genInventory(10000, false))
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, ok := parseYAMLFast(data); !ok {
				b.Fatal("fast path refuses the input")
			}
		}
	})
	b.Run("yaml.v3", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			parseYAML(&collector{}, data)
		}
	})
}

// TestYAMLFastPathFields checks that the fast path's field tables agree
// with the field lists and record methods parseYAML uses.
func TestYAMLFastPathFields(t *testing.T) {
	check := func(kind string, names []string, r record, field func(string) (fieldKind, uint32)) {
		var bits uint32
		for _, name := range names {
			k, bit := field(name)
			want := unknownField
			switch {
			case r.textField(name) != nil:
				want = textKind
			case r.intField(name) != nil:
				want = intKind
			case r.boolField(name) != nil:
				want = boolKind
			case r.listField(name) != nil:
				want = listKind
			}
			if k != want || k == unknownField {
				t.Errorf("%s field %q: kind %v, want %v", kind, name, k, want)
			}
			if bit == 0 || bit&(bit-1) != 0 || bits&bit != 0 {
				t.Errorf("%s field %q: bit %#x is not a bit of its own", kind, name, bit)
			}
			bits |= bit
		}
		for _, name := range []string{"", "Name", "defaults", "<<", "slots", "tags", "spare", "line"} {
			if k, _ := field(name); k != unknownField && !slices.Contains(names, name) {
				t.Errorf("%s field %q is known to the fast path only", kind, name)
			}
		}
	}
	check("machine", fieldNames, &Machine{}, machineField)
	check("enclosure", enclosureFieldNames, &Enclosure{}, enclosureField)
}
