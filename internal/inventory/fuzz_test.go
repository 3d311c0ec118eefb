package inventory

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// fuzzParse checks, for arbitrary input, that Parse does not panic, returns
// either an inventory or Errors (never both), and that whatever it accepts
// writes out and parses back to the same machines (and, in YAML,
// enclosures), byte-stable.
func fuzzParse(t *testing.T, format Format, data []byte) {
	inv, err := Parse(bytes.NewReader(data), format, "fuzz")
	if err != nil {
		if inv != nil {
			t.Fatalf("inventory and error: %v", err)
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error is not a non-empty Errors: %v", err)
		}
		_ = err.Error()
		return
	}
	var out bytes.Buffer
	if err := Write(&out, format, inv); err != nil {
		t.Fatalf("accepted inventory does not write: %v", err)
	}
	back, err := Parse(bytes.NewReader(out.Bytes()), format, "rewritten")
	if err != nil {
		t.Fatalf("written inventory does not parse: %v\n%s", err, out.Bytes())
	}
	if !reflect.DeepEqual(withoutLines(back.Machines), withoutLines(inv.Machines)) {
		t.Fatalf("round trip changed machines:\n%+v\n%+v\n%s", inv.Machines, back.Machines, out.Bytes())
	}
	if !reflect.DeepEqual(withoutEnclosureLines(back.Enclosures), withoutEnclosureLines(inv.Enclosures)) && format == YAML {
		t.Fatalf("round trip changed enclosures:\n%+v\n%+v\n%s", inv.Enclosures, back.Enclosures, out.Bytes())
	}
	var again bytes.Buffer
	if err := Write(&again, format, back); err != nil || !bytes.Equal(again.Bytes(), out.Bytes()) {
		t.Fatalf("second write differs (%v):\n%s\n%s", err, out.Bytes(), again.Bytes())
	}
}

func FuzzParseYAML(f *testing.F) {
	for _, s := range []string{
		"",
		"machines: []\n",
		"defaults:\n  port: 6230\n  user: ops\n  password_env: PW\nmachines:\n  - name: a\n    address: 10.0.0.1\n  - name: b\n    address: bmc.example.com\n    password_file: pw\n",
		"machines:\n  - &m\n    name: a\n    address: fd00::1\n    slot: 2\n    enclosure: r1\n  - <<: *m\n    name: b\n",
		"machines:\n  - {name: a, address: 10.0.0.1, port: 0x26f, guid: '{04030201-0605-0807-090a-0b0c0d0e0f10}'}\n",
		"machines:\n  - name: a\n    address: [b\n",
		"machines:\n  - name: \"null\"\n    address: 10.0.0.1\n    user: \"~\"\n    enclosure: \"#1, \\\"x\\\"\"\n",
		"defaults:\n  privilege: OPERATOR\n  tags: [gpu, \"rack 1\"]\n  group: g1\n  spare: yes\nmachines:\n  - name: a\n    address: 10.0.0.1\n    role: db primary\n  - name: b\n    address: 10.0.0.2\n    tags: []\n    spare: false\n    privilege: Admin\n",
		"enclosures:\n  - name: c1\n    address: 10.0.9.1\n    user: admin\n    password_env: CMC_PW\n    slots: 16\n  - {name: c2, address: cmc2.example.com, port: 6230, slots: 2, protocol: ipmi, password_file: pw}\nmachines:\n  - name: a\n    address: 10.0.0.1\n    enclosure: c1\n    slot: 16\n  - name: b\n    address: 10.0.0.2\n    enclosure: c2\n    slot: 3\n  - name: c\n    address: 10.0.0.3\n    enclosure: c1\n    slot: 16\n",
		"machines:\n  - name: a\n    address: 10.0.0.1\n    tags:\n      - x\n      - [y]\n      -\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzParse(t, YAML, data) })
}

func FuzzParseCSV(f *testing.F) {
	for _, s := range []string{
		"",
		"name,address\n",
		"# fleet\nname,address,port,user,password_env\nnode-1,10.0.0.1,623,admin,PW\n\nnode-2,fd00::2,,,\n",
		"name,guid,address,port,user,protocol,password_file,password_env,cipher_suite,enclosure,slot\nn,0102030405060708090a0b0c0d0e0f10,h,1,u,redfish,f,,17,\"e, \"\"1\"\"\",3\n",
		"\ufeffName, Address\n a , b \n",
		"name,address\na,\"b\nc\"\n",
		"name,address\na,b\"c\n",
		"name,address,privilege,group,role,tags,spare,enclosure,slot\na,10.0.0.1,ADMIN,g-1,\"db, primary\",gpu; rack 1;,TRUE,c1,2\nb,10.0.0.2,operator,,,a;a,no,c1,2\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { fuzzParse(t, CSV, data) })
}

// nonEmpty is the non-empty ones of ss, or nil.
func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// FuzzRoundTrip writes machines with arbitrary free-text fields (where YAML
// and CSV quoting matter) and checks that every valid one reads back
// exactly, in both formats.
func FuzzRoundTrip(f *testing.F) {
	f.Add("node-1", "10.0.0.1", "admin", "pw/a b", "rack 1", 623, 17, 1)
	f.Add("null", "fd00::1", "~", "'q'", "#1, \"x\"", 0, 0, 0)
	f.Add("0123", "h.example.", "yes", "- x: y", "{a: [b]}", 1, 3, 2)
	f.Fuzz(func(t *testing.T, name, address, user, file, enclosure string, port, cs, slot int) {
		inv := &Inventory{Machines: []Machine{
			{Name: name, Address: address, User: user, PasswordFile: file, Enclosure: enclosure, Port: port, CipherSuite: cs, Slot: slot},
			{Name: name + "-2", Address: "10.0.0.2", User: enclosure, PasswordEnv: "PW", Enclosure: user,
				Role: file, Tags: nonEmpty(user, enclosure, file), Group: name, Spare: slot%2 == 1},
		}}
		if inv.Validate() != nil {
			return
		}
		for _, format := range []Format{YAML, CSV} {
			var out bytes.Buffer
			if err := Write(&out, format, inv); err != nil {
				t.Fatalf("%v: write: %v", format, err)
			}
			back, err := Parse(bytes.NewReader(out.Bytes()), format, "rt")
			if err != nil {
				t.Fatalf("%v: parse: %v\n%s", format, err, out.Bytes())
			}
			if !reflect.DeepEqual(withoutLines(back.Machines), inv.Machines) {
				t.Fatalf("%v: round trip changed machines:\n%+v\n%+v\n%s", format, inv.Machines, back.Machines, out.Bytes())
			}
		}
	})
}
