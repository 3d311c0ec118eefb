package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/ipmi/ipmitest"
)

// run executes the CLI in-process and returns stdout and the exit status.
func runCLI(t *testing.T, args ...string) (string, int, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	code := 0
	if err != nil {
		code = 2
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
	}
	return out.String(), code, err
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckOneHostJSON(t *testing.T) {
	bmc := ipmitest.Start(t, ipmitest.Options{})
	pw := writeFile(t, "pw", ipmitest.Password+"\n")
	raw := guid.GUID(ipmitest.GUID)
	out, code, err := runCLI(t, "check", "--host", bmc.Addr.String(), "--user", ipmitest.User, "--password-file", pw,
		"--guid", strings.ReplaceAll(raw.IPMI(), "-", ""), "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %v\n%s", code, err, out)
	}
	var o map[string]any
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, out)
	}
	// The GUID the BMC gave prints as registered (IPMI layout here, while
	// the BMC's own layout reads SMBIOS): equal GUIDs print equal.
	if o["state"] != "Connectable" || o["guid"] != raw.IPMI() || o["expected_guid"] != o["guid"] || o["host"] != bmc.Addr.String() {
		t.Errorf("result: %s", out)
	}
	if _, ok := o["elapsed_ms"].(float64); !ok {
		t.Errorf("elapsed_ms missing: %s", out)
	}

	// Wrong password: exit 1, NotAuthenticated.
	bad := writeFile(t, "bad", "nope")
	out, code, _ = runCLI(t, "check", "--host", bmc.Addr.String(), "--user", ipmitest.User, "--password-file", bad)
	if code != 1 || !strings.Contains(out, "NotAuthenticated") || !strings.Contains(out, "wrong_password") {
		t.Errorf("wrong password: exit %d\n%s", code, out)
	}
}

func TestCheckInventoryStreamsAndSilentDoesNotDelay(t *testing.T) {
	good := []*ipmitest.BMC{ipmitest.Start(t, ipmitest.Options{}), ipmitest.Start(t, ipmitest.Options{})}
	silent, _ := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	defer silent.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pw"), []byte(ipmitest.Password), 0o600)
	var b strings.Builder
	b.WriteString("name,address,port,user,password_file\n")
	fmt.Fprintf(&b, "dead,127.0.0.1,%d,admin,pw\n", silent.LocalAddr().(*net.UDPAddr).Port)
	for i, g := range good {
		fmt.Fprintf(&b, "good-%d,%s,%d,admin,pw\n", i, g.Addr.Addr(), g.Addr.Port())
	}
	inv := filepath.Join(dir, "fleet.csv")
	os.WriteFile(inv, []byte(b.String()), 0o600)

	start := time.Now()
	out, code, _ := runCLI(t, "check", "--inventory", inv, "--timeout", "1s", "-o", "json")
	if code != 1 {
		t.Errorf("exit %d, want 1 (one BMC dead)", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 JSON lines:\n%s", out)
	}
	// The dead BMC is reported last: healthy ones were not held behind it.
	var last map[string]any
	json.Unmarshal([]byte(lines[2]), &last)
	if last["name"] != "dead" || last["state"] != "NotResponding" || last["reason"] != "silent" {
		t.Errorf("last line: %s", lines[2])
	}
	if el := time.Since(start); el > 4*time.Second { // timeout 1s; generous under load
		t.Errorf("took %v with a 1s timeout", el)
	}
}

func TestCheckBadInputExit2(t *testing.T) {
	pw := writeFile(t, "pw", "x")
	unreadable := filepath.Join(t.TempDir(), "missing")
	badInv := writeFile(t, "inv.csv", "name,address,port\nn1,127.0.0.1,99999\n")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"check", "--bogus"}, "unknown flag"},
		{[]string{"check"}, "nothing to check"},
		{[]string{"check", "--host", "127.0.0.1", "--user", "a", "--password-file", unreadable}, "--password-file"},
		{[]string{"check", "--host", "300.1.2.3:623", "--user", "a", "--password-file", pw}, "--host"},
		{[]string{"check", "--host", "127.0.0.1:70000", "--user", "a", "--password-file", pw}, "port"},
		{[]string{"check", "--host", "127.0.0.1", "--user", "a", "--password-file", pw, "--guid", "xyz"}, "--guid"},
		{[]string{"check", "--inventory", badInv}, "port"},
		{[]string{"check", "--host", "127.0.0.1", "--user", "a", "--password-file", pw, "-o", "xml"}, "--output"},
		{[]string{"check", "--host", "127.0.0.1", "--password-file", pw}, "--user"},
		{[]string{"check", "--host", "127.0.0.1", "--user", "a", "--password-file", pw, "--cipher-suites", "17,0"}, `--cipher-suites "17,0": names suite 0`},
		{[]string{"check", "--host", "127.0.0.1", "--user", "a", "--password-file", pw, "--cipher-suites", "17,5"}, "suite 5, which is not supported"},
		{[]string{"check", "--inventory", writeFile(t, "inv.yaml", "machines:\n  - {name: n1, address: 127.0.0.1, cipher_suites: [3, 0]}\n")}, `field "cipher_suites"`},
	}
	for _, c := range cases {
		_, code, err := runCLI(t, c.args...)
		if code != 2 || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: exit %d err %v, want exit 2 mentioning %q", c.args, code, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error is not one line: %q", c.args, err)
		}
	}
	// "300.1.2.3" parses as a hostname; it must fail resolution, not hang.
}
