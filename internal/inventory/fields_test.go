package inventory

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// formats selects the formats a case runs in.
type formats int

const (
	both formats = iota
	yamlOnly
	csvOnly
)

func (f formats) list() []Format {
	switch f {
	case yamlOnly:
		return []Format{YAML}
	case csvOnly:
		return []Format{CSV}
	}
	return []Format{YAML, CSV}
}

// TestMachineFieldRules covers the rules of group, role, tags, privilege
// and spare: every error names the field and its line, and is the only
// error.
func TestMachineFieldRules(t *testing.T) {
	bad := []struct {
		desc    string
		formats formats
		fields  []kv
		field   string
		value   string // the value the error quotes
		reason  string
	}{
		{"group with a space", both, with(kv{"group", `"rack 1"`, "rack 1"}), "group", "rack 1", "only letters"},
		{"group with a slash", both, with(v("group", "rack/1")), "group", "rack/1", "only letters"},
		{"group with a colon", both, with(kv{"group", `"a:b"`, "a:b"}), "group", "a:b", "only letters"},
		{"role with a control character", both, with(kv{"role", `"db\tprimary"`, "db\tprimary"}), "role", "db\tprimary", "control character"},
		{"role with trailing space", yamlOnly, with(kv{"role", `"db "`, ""}), "role", "db ", "white space"},
		{"privilege unknown", both, with(v("privilege", "root")), "privilege", "root", "not a privilege level"},
		{"privilege callback", both, with(v("privilege", "callback")), "privilege", "callback", "want user, operator or administrator"},
		{"privilege abbreviated", both, with(v("privilege", "op")), "privilege", "op", "not a privilege level"},
		{"privilege a number", both, with(v("privilege", "4")), "privilege", "4", "not a privilege level"},
		{"spare not a bool", both, with(v("spare", "maybe")), "spare", "maybe", "is not true or false"},
		{"spare a number", both, with(v("spare", "1")), "spare", "1", "is not true or false"},
		{"spare a list", yamlOnly, with(kv{"spare", "[true]", ""}), "spare", "", "single value"},
		{"tags duplicate", both, with(kv{"tags", "[a, b, a]", "a;b;a"}), "tags", "a", "listed twice"},
		{"tag with a control character", both, with(kv{"tags", `["a\tb"]`, "a\tb"}), "tags", "a\tb", "control character"},
		{"tag with a semicolon", yamlOnly, with(kv{"tags", `["a;b"]`, ""}), "tags", "a;b", "contains ';'"},
		{"tag empty string", yamlOnly, with(kv{"tags", `[a, ""]`, ""}), "tags", "", "tag #2 is empty"},
		{"tag null", yamlOnly, with(kv{"tags", "[a, ~]", ""}), "tags", "", "item #2 is empty"},
		{"tag with leading space", yamlOnly, with(kv{"tags", `[" a"]`, ""}), "tags", " a", "white space"},
		{"tag a mapping", yamlOnly, with(kv{"tags", "[a, {b: c}]", ""}), "tags", "", "item #2 must be a single value"},
		{"tags a scalar", yamlOnly, with(kv{"tags", "gpu", ""}), "tags", "", "must be a list"},
		{"tags a mapping", yamlOnly, with(kv{"tags", "{a: b}", ""}), "tags", "", "must be a list"},
		{"tag invalid UTF-8", csvOnly, with(kv{"tags", "", "a;b\xff"}), "tags", "b\xff", "not valid UTF-8"},
	}
	for _, tc := range bad {
		for _, format := range tc.formats.list() {
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
				if fe.Value != tc.value {
					t.Errorf("value %q, want %q", fe.Value, tc.value)
				}
				if fe.Machine != "node-7" || fe.Enclosure != "" {
					t.Errorf("machine %q enclosure %q, want machine node-7", fe.Machine, fe.Enclosure)
				}
				msg := fe.Error()
				wantPrefix := fmt.Sprintf("fleet.%s:%d: machine \"node-7\": field %q: ", strings.ToLower(format.String()), line, tc.field)
				if !strings.HasPrefix(msg, wantPrefix) || strings.Contains(msg, "\n") {
					t.Errorf("message %q: want one line starting %q", msg, wantPrefix)
				}
				if errs := fieldErrors(t, err); len(errs) != 1 {
					t.Errorf("want exactly one error, got %d:\n%v", len(errs), err)
				}
			})
		}
	}
}

// extra is the part of a machine the new fields make up.
type extra struct {
	Privilege, Group, Role string
	Tags                   []string
	Spare                  bool
}

func extraOf(m Machine) extra {
	return extra{m.Privilege, m.Group, m.Role, m.Tags, m.Spare}
}

func TestMachineFieldsAccepted(t *testing.T) {
	good := []struct {
		desc    string
		formats formats
		fields  []kv
		want    extra
	}{
		{"none", both, ok, extra{}},
		{"privilege user", both, with(v("privilege", "user")), extra{Privilege: "user"}},
		{"privilege USER", both, with(v("privilege", "USER")), extra{Privilege: "user"}},
		{"privilege OPERATOR", both, with(v("privilege", "OPERATOR")), extra{Privilege: "operator"}},
		{"privilege Operator", both, with(v("privilege", "Operator")), extra{Privilege: "operator"}},
		{"privilege ADMINISTRATOR", both, with(v("privilege", "ADMINISTRATOR")), extra{Privilege: "administrator"}},
		{"privilege admin", both, with(v("privilege", "admin")), extra{Privilege: "administrator"}},
		{"privilege ADMIN", both, with(v("privilege", "ADMIN")), extra{Privilege: "administrator"}},
		{"privilege empty", yamlOnly, with(kv{"privilege", `""`, ""}), extra{}},
		{"group", both, with(v("group", "rack_1.row-B")), extra{Group: "rack_1.row-B"}},
		{"role free text", both, with(kv{"role", `"db primary, ключ"`, "db primary, ключ"}), extra{Role: "db primary, ключ"}},
		{"spare true", both, with(v("spare", "true")), extra{Spare: true}},
		{"spare TRUE", both, with(v("spare", "TRUE")), extra{Spare: true}},
		{"spare yes", both, with(v("spare", "yes")), extra{Spare: true}},
		{"spare quoted", yamlOnly, with(kv{"spare", `"true"`, ""}), extra{Spare: true}},
		{"spare false", both, with(v("spare", "false")), extra{}},
		{"spare No", both, with(v("spare", "No")), extra{}},
		{"tags", both, with(kv{"tags", `[gpu, "rack 1", "x,y"]`, "gpu;rack 1;x,y"}), extra{Tags: []string{"gpu", "rack 1", "x,y"}}},
		{"tags one", both, with(kv{"tags", "[gpu]", "gpu"}), extra{Tags: []string{"gpu"}}},
		{"tags empty list", yamlOnly, with(kv{"tags", "[]", ""}), extra{}},
		{"tags of numbers and bools", yamlOnly, with(kv{"tags", "[1, 1e3, yes, true]", ""}), extra{Tags: []string{"1", "1e3", "yes", "true"}}},
		{"tags CSV white space and empty pieces", csvOnly, with(kv{"tags", "", " gpu ;; rack 1 ;"}), extra{Tags: []string{"gpu", "rack 1"}}},
		{"tags CSV only separators", csvOnly, with(kv{"tags", "", ";"}), extra{}},
		{"tags case-sensitive", both, with(kv{"tags", "[a, A]", "a;A"}), extra{Tags: []string{"a", "A"}}},
	}
	for _, tc := range good {
		for _, format := range tc.formats.list() {
			t.Run(format.String()+"/"+tc.desc, func(t *testing.T) {
				src := yamlWith(tc.fields)
				if format == CSV {
					src = csvWith(tc.fields)
				}
				inv := mustParse(t, format, src)
				if len(inv.Machines) != 2 {
					t.Fatalf("want 2 machines, got %d", len(inv.Machines))
				}
				if got := extraOf(inv.Machines[1]); !reflect.DeepEqual(got, tc.want) {
					t.Errorf("got %+v, want %+v", got, tc.want)
				}
			})
		}
	}
}

func TestYAMLTagLines(t *testing.T) {
	src := `machines:
  - name: a
    address: 10.0.0.1
    tags:
      - gpu
      - "a;b"
      - gpu
  - name: b
    address: 10.0.0.2
    tags:
      - x
      - [y]
`
	_, err := parseString(t, YAML, src)
	wantError(t, err, 6, "tags")
	fe := wantError(t, err, 7, "tags")
	if !strings.Contains(fe.Reason, "listed twice") {
		t.Errorf("reason %q", fe.Reason)
	}
	wantError(t, err, 12, "tags")
	if n := len(fieldErrors(t, err)); n != 3 {
		t.Errorf("want 3 errors, got %d:\n%v", n, err)
	}
}

func TestPrivilege(t *testing.T) {
	for in, want := range map[string]string{
		"": "administrator", "user": "user", "USER": "user", "OPERATOR": "operator",
		"administrator": "administrator", "ADMINISTRATOR": "administrator", "admin": "administrator", "Admin": "administrator",
	} {
		if got, ok := ParsePrivilege(in); !ok || got != want {
			t.Errorf("ParsePrivilege(%q) = %q, %v; want %q", in, got, ok, want)
		}
		if got := (Machine{Privilege: in}).EffectivePrivilege(); got != want {
			t.Errorf("EffectivePrivilege(%q) = %q, want %q", in, got, want)
		}
	}
	for _, in := range []string{"callback", "root", "adm", " user", "4", "oem"} {
		if got, ok := ParsePrivilege(in); ok {
			t.Errorf("ParsePrivilege(%q) = %q, accepted", in, got)
		}
	}
}

func TestDefaultsNewFields(t *testing.T) {
	src := `defaults:
  privilege: OPERATOR
  group: rack-1
  role: compute
  tags: [gpu, a100]
  spare: true
machines:
  - name: plain
    address: 10.0.0.1
  - name: own
    address: 10.0.0.2
    privilege: user
    group: rack-2
    role: db
    tags: [cpu]
    spare: false
  - name: cleared
    address: 10.0.0.3
    tags: []
    role: ""
  - name: null-is-unset
    address: 10.0.0.4
    tags:
    spare:
`
	inv := mustParse(t, YAML, src)
	want := []extra{
		{Privilege: "operator", Group: "rack-1", Role: "compute", Tags: []string{"gpu", "a100"}, Spare: true},
		{Privilege: "user", Group: "rack-2", Role: "db", Tags: []string{"cpu"}},
		{Privilege: "operator", Group: "rack-1", Spare: true},
		{Privilege: "operator", Group: "rack-1", Role: "compute", Tags: []string{"gpu", "a100"}, Spare: true},
	}
	for i, w := range want {
		if got := extraOf(inv.Machines[i]); !reflect.DeepEqual(got, w) {
			t.Errorf("%s: got %+v, want %+v", inv.Machines[i].Name, got, w)
		}
	}
	// Machines inheriting the same tags do not share one slice.
	inv.Machines[0].Tags[0] = "changed"
	if inv.Machines[3].Tags[0] != "gpu" {
		t.Error("inherited tags share their backing array")
	}

	src = `defaults:
  privilege: root
  group: rack 1
  role: "x "
  tags: [a, a]
  spare: often
machines:
  - name: a
    address: 10.0.0.1
  - name: b
    address: 10.0.0.2
`
	_, err := parseString(t, YAML, src)
	for _, w := range []struct {
		line  int
		field string
	}{{2, "defaults.privilege"}, {3, "defaults.group"}, {4, "defaults.role"}, {5, "defaults.tags"}, {6, "defaults.spare"}} {
		if fe := wantError(t, err, w.line, w.field); fe.Machine != "" {
			t.Errorf("%s: machine %q, want none", w.field, fe.Machine)
		}
	}
	if n := len(fieldErrors(t, err)); n != 5 {
		t.Errorf("want 5 errors (once each, not per machine), got %d:\n%v", n, err)
	}

	for _, field := range []string{"name", "guid", "address", "enclosure", "slot"} {
		_, err := parseString(t, YAML, "defaults:\n  "+field+": x\nmachines: []\n")
		if fe := wantError(t, err, 2, "defaults."+field); !strings.Contains(fe.Reason, "unknown field") {
			t.Errorf("defaults.%s: %v", field, fe)
		}
	}
}

func TestCSVNewColumns(t *testing.T) {
	src := "name,address,Privilege,GROUP,role,tags,spare\n" +
		"a,10.0.0.1,ADMIN,g1,\"db, primary\",gpu; rack 1,TRUE\n" +
		"b,10.0.0.2,,,,,\n"
	inv := mustParse(t, CSV, src)
	want := []extra{
		{Privilege: "administrator", Group: "g1", Role: "db, primary", Tags: []string{"gpu", "rack 1"}, Spare: true},
		{},
	}
	for i, w := range want {
		if got := extraOf(inv.Machines[i]); !reflect.DeepEqual(got, w) {
			t.Errorf("row %d: got %+v, want %+v", i+2, got, w)
		}
	}
}

// TestWriteCanonical: the writers spell privilege levels canonically and
// write false and no tags as nothing.
func TestWriteCanonical(t *testing.T) {
	inv := &Inventory{Machines: []Machine{
		{Name: "a", Address: "10.0.0.1", Privilege: "ADMIN", Tags: []string{}},
		{Name: "b", Address: "10.0.0.2", Privilege: "Operator", Tags: []string{"x", "y z"}, Spare: true},
	}}
	var y, c strings.Builder
	if err := WriteYAML(&y, inv); err != nil {
		t.Fatal(err)
	}
	if err := WriteCSV(&c, inv); err != nil {
		t.Fatal(err)
	}
	wantYAML := `machines:
  - name: a
    address: 10.0.0.1
    privilege: administrator
  - name: b
    address: 10.0.0.2
    privilege: operator
    tags: [x, y z]
    spare: true
`
	if y.String() != wantYAML {
		t.Errorf("YAML:\n%s\nwant\n%s", y.String(), wantYAML)
	}
	wantCSV := "name,guid,address,port,user,protocol,password_file,password_env,cipher_suite,cipher_suites,privilege,redfish_auth,enclosure,slot,group,role,tags,spare,zone\n" +
		"a,,10.0.0.1,,,,,,,,administrator,,,,,,,,\n" +
		"b,,10.0.0.2,,,,,,,,operator,,,,,,x;y z,true,\n"
	if c.String() != wantCSV {
		t.Errorf("CSV:\n%s\nwant\n%s", c.String(), wantCSV)
	}
	if inv.Machines[0].Privilege != "ADMIN" || inv.Machines[0].Tags == nil {
		t.Error("the writers changed the caller's machines")
	}
}

// TestZoneField: a machine's zone is read from YAML (also from defaults:)
// and CSV, written back, and a bad one is refused naming the field.
func TestZoneField(t *testing.T) {
	inv, err := Parse(strings.NewReader("defaults:\n  zone: dc1\nmachines:\n  - name: a\n    address: 10.0.0.1\n  - name: b\n    address: 10.0.0.2\n    zone: dc2\n"), YAML, "f.yaml")
	if err != nil || inv.Machines[0].Zone != "dc1" || inv.Machines[1].Zone != "dc2" {
		t.Fatalf("YAML: %+v %v", inv, err)
	}
	inv, err = Parse(strings.NewReader("name,address,zone\na,10.0.0.1,dc3\n"), CSV, "f.csv")
	if err != nil || inv.Machines[0].Zone != "dc3" {
		t.Fatalf("CSV: %+v %v", inv, err)
	}
	_, err = Parse(strings.NewReader("machines:\n  - name: a\n    address: 10.0.0.1\n    zone: \"dc 1\"\n"), YAML, "f.yaml")
	if err == nil || !strings.Contains(err.Error(), `"zone"`) {
		t.Fatalf("bad zone: %v", err)
	}
}
