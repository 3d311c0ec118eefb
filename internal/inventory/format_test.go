package inventory

import (
	"reflect"
	"strings"
	"testing"
)

// TestYAMLStructure covers the problems only YAML has; want is field and
// line of one expected error.
func TestYAMLStructure(t *testing.T) {
	cases := []struct {
		desc, src string
		line      int
		field     string
		reason    string
	}{
		{"unknown machine field", "machines:\n  - name: a\n    address: b\n    passwd: x\n", 4, "passwd", "unknown field"},
		{"unknown top-level field", "machine:\n  - name: a\n", 1, "machine", "unknown top-level field"},
		{"unknown defaults field", "defaults:\n  address: 10.0.0.1\nmachines: []\n", 2, "defaults.address", "unknown field"},
		{"machines given twice", "machines: []\nmachines: []\n", 2, "machines", "given twice"},
		{"field given twice", "machines:\n  - name: a\n    address: b\n    name: c\n", 4, "name", "given twice"},
		{"machines not a list", "machines:\n  name: a\n", 2, "machines", "must be a list"},
		{"machine not a mapping", "machines:\n  - a\n", 2, "", "must be a mapping"},
		{"empty machine", "machines:\n  -\n  - name: a\n    address: b\n", 2, "", "is empty"},
		{"list value", "machines:\n  - name: a\n    address: [b, c]\n", 3, "address", "single value"},
		{"top level a list", "- name: a\n", 1, "", "top level must be a mapping"},
		{"second document", "machines: []\n---\nmachines: []\n", 3, "", "second YAML document"},
		{"syntax: unclosed flow", "machines:\n  - name: [a\n", 2, "", "YAML syntax error"},
		{"syntax: unclosed quote", "machines:\n  - name: a\n    address: 'b\n  - name: c\n", 3, "", "YAML syntax error"},
		{"syntax: late in a long file", strings.Repeat("# pad\n", 500) + "machines:\n  - name: a\n    address: b\n  - name: c\n  address: d\n", 505, "", "YAML syntax error"},
		{"syntax: bad indent", "machines:\n  - name: a\n    address: b\n   port: 1\n", 4, "", "block starting on line 2"},
		{"syntax: stray list item", "machines: []\n\nx: 2\n- c\n", 4, "", "YAML syntax error"},
		{"syntax: tab", "machines:\n  - name: a\n\taddress: b\n", 3, "", "YAML syntax error"},
		{"syntax: mapping in scalar", "machines:\n  - name: a\n    address: b: c\n", 3, "", "YAML syntax error"},
		{"syntax: control character", "machines:\n  - name: a\n    address: b\x01\n", 3, "", "YAML syntax error"},
		{"syntax: unknown anchor", "machines:\n  - name: a\n    address: b\n  - *nope\n", 4, "", "unknown anchor"},
		{"syntax: second line", "- a\nb: c\n", 2, "", "YAML syntax error"},
		{"syntax: first line", "[a, b}\n", 1, "", "YAML syntax error"},
		{"defaults not a mapping", "defaults: 623\nmachines: []\n", 1, "defaults", "must be a mapping"},
		{"merge of a scalar", "machines:\n  - <<: 5\n    name: a\n    address: b\n", 2, "<<", "must merge a mapping"},
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

func TestYAMLEmpty(t *testing.T) {
	for _, src := range []string{"", "\n", "# nothing yet\n", "~\n", "machines:\n", "machines: []\n", "machines: []\n---\n", "---\nmachines:\n...\n---\n# end\n", "defaults:\nmachines:\n"} {
		inv := mustParse(t, YAML, src)
		if len(inv.Machines) != 0 {
			t.Errorf("%q: %d machines", src, len(inv.Machines))
		}
	}
}

func TestYAMLAnchorsAndMerge(t *testing.T) {
	src := `machines:
  - &rack1
    name: node-1
    address: 10.0.1.1
    user: ops
    enclosure: rack1
    slot: 1
  - <<: *rack1
    name: node-2
    address: 10.0.1.2
    slot: 2
`
	inv := mustParse(t, YAML, src)
	m := inv.Machines[1]
	if m.Name != "node-2" || m.User != "ops" || m.Enclosure != "rack1" || m.Slot != 2 || m.Line != 8 {
		t.Errorf("merged machine = %+v", m)
	}
}

func TestYAMLNumbers(t *testing.T) {
	src := "machines:\n  - name: a\n    address: b\n    port: \"6230\"\n    cipher_suite: 0x11\n    slot:\n"
	m := mustParse(t, YAML, src).Machines[0]
	if m.Port != 6230 || m.CipherSuite != 17 || m.Slot != 0 {
		t.Errorf("numbers: %+v", m)
	}
}

func TestCSVStructure(t *testing.T) {
	cases := []struct {
		desc, src string
		line      int
		field     string
		reason    string
	}{
		{"unknown column", "name,address,passwd\na,b,c\n", 1, "passwd", "unknown column"},
		{"header forgotten", "node-1,10.0.0.1\n", 1, "node-1", "must be a header"},
		{"column twice", "name,address,name\n", 1, "name", "twice"},
		{"empty column name", "name,address,\n", 1, "", "has no name"},
		{"address column missing", "name,user\na,b\n", 1, "address", "required column missing"},
		{"name column missing", "address\nb\n", 1, "name", "required column missing"},
		{"too few columns", "name,address,port\na,b,1\nc,d\n", 3, "", "row has 2 columns, the header has 3"},
		{"too many columns", "name,address\na,b,1\n", 2, "", "row has 3 columns"},
		{"comments shift lines", "# fleet\n\nname,address\n# rack 1\n\na,10.0.0.1,x\n", 6, "", "row has 3"},
		{"bare quote", "name,address\na,b\"c\nd,e\n", 2, "", "CSV syntax error"},
		{"unterminated quote", "name,address\na,b\nc,\"d\n", 3, "", "CSV syntax error"},
		{"no header", "", 0, "", "no header row"},
		{"only comments", "# nothing\n\n", 0, "", "no header row"},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := parseString(t, CSV, tc.src)
			fe := wantError(t, err, tc.line, tc.field)
			if !strings.Contains(fe.Reason, tc.reason) {
				t.Errorf("reason %q does not mention %q", fe.Reason, tc.reason)
			}
		})
	}
}

func TestCSVLenient(t *testing.T) {
	src := "\ufeff# exported from the asset sheet\nName, Address , PORT,slot,enclosure\n\n  node-1 , 10.0.0.1, 6230 ,,\n# rack 2\nnode-2,\"10.0.0.2\",,3,rack2\n"
	inv := mustParse(t, CSV, src)
	want := []Machine{
		{Name: "node-1", Address: "10.0.0.1", Port: 6230, Line: 4},
		{Name: "node-2", Address: "10.0.0.2", Slot: 3, Enclosure: "rack2", Line: 6},
	}
	if !reflect.DeepEqual(inv.Machines, want) {
		t.Errorf("got %+v\nwant %+v", inv.Machines, want)
	}
	if inv := mustParse(t, CSV, "name,address\n"); len(inv.Machines) != 0 {
		t.Errorf("header only: %d machines", len(inv.Machines))
	}
}

func TestUnsupportedFormat(t *testing.T) {
	if _, err := Parse(strings.NewReader(""), Format(0), "x"); err == nil {
		t.Error("Format(0) accepted")
	}
}
