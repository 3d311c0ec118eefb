package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"github.com/lightsout/lightsout/internal/poll"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/store"
)

// TestEveryOutputFlagIsTheSame: every command with -o takes the same four
// formats and has --out FILE (export: -o yaml|csv, its own --out).
func TestEveryOutputFlagIsTheSame(t *testing.T) {
	n := 0
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.RunE == nil {
			return
		}
		o := c.Flags().Lookup("output")
		if o == nil {
			o = c.InheritedFlags().Lookup("output")
		}
		if o == nil {
			return
		}
		n++
		if o.Shorthand != "o" {
			t.Errorf("%s: --output has no -o", c.CommandPath())
		}
		out := c.Flags().Lookup("out")
		if out == nil {
			out = c.InheritedFlags().Lookup("out")
		}
		if out == nil {
			t.Errorf("%s: -o but no --out FILE", c.CommandPath())
		}
		if c.Name() == "export" {
			return
		}
		if o.Usage != outputUsage || o.DefValue != formatTable {
			t.Errorf("%s: -o is %q (default %q), want the common flag", c.CommandPath(), o.Usage, o.DefValue)
		}
		if out != nil && out.Usage != outUsage && c.CommandPath() != "lightsout token create" {
			t.Errorf("%s: --out is %q, want the common flag", c.CommandPath(), out.Usage)
		}
	}
	walk(newRoot())
	if n < 25 {
		t.Errorf("only %d commands with -o", n)
	}
}

// yamlDocs decodes a YAML stream into its documents.
func yamlDocs(t *testing.T, what, s string) []map[string]any {
	t.Helper()
	var docs []map[string]any
	dec := yaml.NewDecoder(strings.NewReader(s))
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: not YAML documents: %v\n%s", what, err, s)
		}
		docs = append(docs, m)
	}
}

// jsonDocs decodes JSON lines.
func jsonDocs(t *testing.T, what, s string) []map[string]any {
	t.Helper()
	var docs []map[string]any
	dec := json.NewDecoder(strings.NewReader(s))
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s: not JSON lines: %v\n%s", what, err, s)
		}
		docs = append(docs, m)
	}
	return docs
}

// firstLine is a table's header.
func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// TestOutputFormatsThroughServer drives the listing and reading commands
// against a real server and simulated fleet with -o table, wide, json and
// yaml, and --out FILE: wide adds columns, yaml has the same records and
// field names as json, --out writes the file and nothing to stdout, and a
// failing command leaves the file as it was.
func TestOutputFormatsThroughServer(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LIGHTSOUT_SERVER", "")
	t.Setenv("LIGHTSOUT_TOKEN", "")
	t.Setenv("LIGHTSOUT_PASSWORD", "")
	e := apitest.Start(t, apitest.Options{Subnet: 118,
		Fleet: sim.Config{Count: 6, Seed: 5, Enclosures: []sim.EnclosureConfig{{Name: "enc-a", Blades: 2}},
			Faults: map[string]sim.Faults{"bmc-00004": {WrongPassword: true}}}})
	const (
		admin    = store.RoleAdmin
		operator = store.RoleOperator
		viewer   = store.RoleViewer
	)
	e.ImportFleet(t)
	poll.Wait(30*time.Second, func() bool {
		out, _, _ := as(t, e, viewer, "machines", "list", "-o", "json")
		return !strings.Contains(out, `"state":"Unknown"`) && strings.Count(out, "\n") == 6
	})

	// machines list: table, wide, json, yaml.
	out, code, err := as(t, e, viewer, "machines", "list")
	wantExit(t, "machines list", out, code, err, 0, "NAME", "bmc-00001")
	if h := firstLine(out); strings.Contains(h, "PROTOCOL") || strings.Contains(h, "USER") {
		t.Errorf("the table shows wide columns: %q", h)
	}
	out, code, err = as(t, e, viewer, "machines", "list", "-o", "wide")
	wantExit(t, "machines list -o wide", out, code, err, 0, "enc-a/1", "wrong_password")
	if h := strings.Fields(firstLine(out)); strings.Join(h, " ") != "NAME GROUP ROLE ZONE ENCLOSURE PROTOCOL ADDRESS USER STATE REASON POWER SINCE CHECKED MESSAGE" {
		t.Errorf("wide header: %q", h)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		if f := strings.Fields(l); len(f) < 14 || f[3] != "default" || f[5] != "ipmi" || f[7] != "admin" {
			t.Errorf("wide row lacks the protocol and user: %q", l)
		}
	}
	js, code, err := as(t, e, viewer, "machines", "list", "-o", "json")
	wantExit(t, "machines list -o json", js, code, err, 0)
	ys, code, err := as(t, e, viewer, "machines", "list", "-o", "yaml")
	wantExit(t, "machines list -o yaml", ys, code, err, 0)
	jd, yd := jsonDocs(t, "json", js), yamlDocs(t, "yaml", ys)
	if len(jd) != 6 || len(yd) != 6 {
		t.Fatalf("json %d records, yaml %d documents; want 6 each", len(jd), len(yd))
	}
	for i := range jd {
		// The same records with the same field names.
		jch, ych := jd[i]["channels"].([]any), yd[i]["channels"].([]any)
		if jd[i]["name"] != yd[i]["name"] || len(jch) != 1 || len(ych) != 1 {
			t.Fatalf("record %d: json %v, yaml %v", i, jd[i], yd[i])
		}
		ja, ya := jch[0].(map[string]any)["account"].(map[string]any), ych[0].(map[string]any)["account"].(map[string]any)
		js, ys := jch[0].(map[string]any)["state"].(map[string]any), ych[0].(map[string]any)["state"].(map[string]any)
		if ja["address"] != ya["address"] || ja["user"] != ya["user"] || js["state"] != ys["state"] || js["reason"] != ys["reason"] {
			t.Errorf("record %d differs: json %v %v, yaml %v %v", i, ja, js, ya, ys)
		}
	}

	// --out FILE: the records in the file, none on stdout; mode 0600.
	file := filepath.Join(t.TempDir(), "machines.json")
	out, code, err = as(t, e, viewer, "machines", "list", "-o", "json", "--out", file)
	wantExit(t, "--out", out, code, err, 0)
	if strings.Contains(out, "bmc-00001") {
		t.Errorf("--out printed the records too:\n%s", out)
	}
	b, _ := os.ReadFile(file)
	if d := jsonDocs(t, "--out file", string(b)); len(d) != 6 {
		t.Errorf("--out file has %d records, want 6:\n%s", len(d), b)
	}
	if st, err := os.Stat(file); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("--out file: %v %v", st, err)
	}
	// A command that fails leaves the file as it was, and no temporary
	// file beside it.
	out, code, err = as(t, e, viewer, "machines", "show", "ghost", "-o", "yaml", "--out", file)
	wantExit(t, "failing --out", out, code, err, 2, "ghost")
	if b2, _ := os.ReadFile(file); !bytes.Equal(b, b2) {
		t.Errorf("a failed command changed the --out file:\n%s", b2)
	}
	if ents, _ := os.ReadDir(filepath.Dir(file)); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
	out, code, err = as(t, e, viewer, "machines", "show", "bmc-00004", "-o", "yaml", "--out", file)
	wantExit(t, "show --out", out, code, err, 0)
	if b, _ := os.ReadFile(file); len(yamlDocs(t, "show --out", string(b))) != 1 || !strings.Contains(string(b), "reason: wrong_password") {
		t.Errorf("show -o yaml --out:\n%s", b)
	}
	// A file name given to -o: pointed at --out.
	out, code, err = as(t, e, viewer, "machines", "list", "-o", "fleet.yaml")
	wantExit(t, "-o FILE", out, code, err, 2, "want table, wide, json or yaml", "--out fleet.yaml")

	// Every listing and reading command: yaml documents with the json
	// field names, and wide columns.
	for _, c := range []struct {
		role  store.Role
		args  []string
		key   string // a field every record has
		wide  string // a column only -o wide shows
		exits int
	}{
		{viewer, []string{"accounts", "list"}, "account", "CIPHER", 0},
		{viewer, []string{"accounts", "show", "1"}, "state", "", 0},
		{viewer, []string{"enclosures", "list"}, "slots", "CREATED", 0},
		{viewer, []string{"enclosures", "show", "enc-a"}, "slots", "CREATED", 0},
		{viewer, []string{"events", "--since", "1h"}, "code", "FIRST", 0},
		{operator, []string{"audit"}, "action", "ID", 0},
		{viewer, []string{"history", "bmc-00004"}, "to", "ACCOUNT", 0},
		{admin, []string{"token", "list"}, "role", "ID", 0},
		{viewer, []string{"incidents"}, "remedy", "", 0},
		{viewer, []string{"security", "bmc-00001"}, "status", "ATTEMPTED", 0},
		{operator, []string{"check", "bmc-00001", "bmc-00004"}, "state", "FAILED-STAGE", 1},
		{viewer, []string{"power", "status", "bmc-00001"}, "result", "ACTION", 0},
		{admin, []string{"domain", "status"}, "", "", 0},
	} {
		name := strings.Join(c.args, " ")
		out, code, err := as(t, e, c.role, append(c.args, "-o", "json")...)
		wantExit(t, name+" -o json", out, code, err, c.exits)
		jd := jsonDocs(t, name, out)
		out, code, err = as(t, e, c.role, append(c.args, "-o", "yaml")...)
		wantExit(t, name+" -o yaml", out, code, err, c.exits)
		yd := yamlDocs(t, name, out)
		if len(jd) != len(yd) {
			t.Errorf("%s: %d json records, %d yaml documents", name, len(jd), len(yd))
		}
		if c.key != "" && (len(yd) == 0 || yd[0][c.key] == nil) {
			t.Errorf("%s -o yaml: no %q in %v", name, c.key, yd)
		}
		out, code, err = as(t, e, c.role, append(c.args, "-o", "table")...)
		wantExit(t, name+" -o table", out, code, err, c.exits)
		tableHead := firstLine(out)
		out, code, err = as(t, e, c.role, append(c.args, "-o", "wide")...)
		wantExit(t, name+" -o wide", out, code, err, c.exits)
		if c.wide != "" && (!strings.Contains(firstLine(out), c.wide) || strings.Contains(tableHead, c.wide)) {
			t.Errorf("%s: wide header %q, table header %q; want %s only in wide", name, firstLine(out), tableHead, c.wide)
		}
		out, code, err = as(t, e, c.role, append(c.args, "-o", "xml")...)
		wantExit(t, name+" -o xml", out, code, err, 2, "--output", "table, wide, json or yaml")
	}

	// events: the table's time column is the one it is sorted by (the
	// last occurrence), newest first.
	out, code, err = as(t, e, viewer, "events", "--since", "1h", "--severity", "info")
	wantExit(t, "events", out, code, err, 0)
	evLines := strings.Split(strings.TrimSpace(out), "\n")
	if h := strings.Fields(evLines[0]); len(h) == 0 || h[0] != "LAST" || len(evLines) < 3 {
		t.Errorf("events table: %q", evLines)
	}
	for i := 2; i < len(evLines); i++ {
		// "2006-01-02 15:04:05" is the first 19 characters.
		if evLines[i][:19] > evLines[i-1][:19] {
			t.Errorf("events not newest-last first: %q after %q", evLines[i], evLines[i-1])
		}
	}

	// power identify on|off|status, ipmitool's words: the simulated BMC's
	// lamp follows, and identify status reads it back (Get Chassis Status).
	bmc1, _ := e.Fleet.BMC("bmc-00001")
	out, code, err = as(t, e, operator, "power", "identify", "on", "bmc-00001")
	wantExit(t, "power identify on", out, code, err, 0, "1 ok")
	if !bmc1.Status().Identify {
		t.Error("power identify on: the lamp is off")
	}
	out, code, err = as(t, e, viewer, "power", "identify", "status", "bmc-00001", "-o", "json")
	wantExit(t, "power identify status (on)", out, code, err, 0, `"action":"identify-status"`, `"detail":"identify on"`)
	out, code, err = as(t, e, operator, "power", "identify", "off", "bmc-00001", "-o", "yaml")
	wantExit(t, "power identify off", out, code, err, 0, "action: identify-off")
	if bmc1.Status().Identify {
		t.Error("power identify off: the lamp is on")
	}
	out, code, err = as(t, e, viewer, "power", "identify", "status", "bmc-00001")
	wantExit(t, "power identify status (off)", out, code, err, 0, "identify off", "1 ok")

	// check straight to the BMCs (no server): wide and yaml too.
	out, code, err = runCLI(t, "check", "--inventory", e.Inventory, "-o", "wide", "--all-rows")
	wantExit(t, "check --inventory -o wide", out, code, err, 1, "FAILED-STAGE", "wrong_password")
	out, code, err = runCLI(t, "check", "--inventory", e.Inventory, "-o", "yaml")
	if d := yamlDocs(t, "check -o yaml", out); code != 1 || len(d) != 6 || d[0]["state"] == nil || d[0]["evidence"] == nil {
		t.Errorf("check --inventory -o yaml: exit %d %v, %d documents\n%s", code, err, len(d), out)
	}
	file = filepath.Join(t.TempDir(), "check.yaml")
	out, code, err = runCLI(t, "check", "--inventory", e.Inventory, "-o", "yaml", "--out", file)
	b, _ = os.ReadFile(file)
	// A check that found a refused password exits 1 but wrote its results.
	if code != 1 || len(yamlDocs(t, "check --out", string(b))) != 6 || strings.Contains(out, "state:") {
		t.Errorf("check --out: exit %d %v\nstdout:\n%s\nfile:\n%s", code, err, out, b)
	}
}

// TestSimExportProtocolFlag: sim --export-protocol is checked before the
// fleet starts, the error naming the flag.
func TestSimExportProtocolFlag(t *testing.T) {
	out, code, err := runCLI(t, "sim", "--count", "1", "--control", "", "--export-protocol", "snmp")
	wantExit(t, "sim --export-protocol snmp", out, code, err, 2, "--export-protocol", "want ipmi or redfish")
	out, code, err = runCLI(t, "sim", "--count", "1", "--control", "", "--export-protocol", "redfish")
	wantExit(t, "sim --export-protocol redfish without --redfish", out, code, err, 2, "--export-protocol", "serves Redfish")
}
