package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/sim"
	"github.com/lightsout/lightsout/internal/store"
)

// cliEnv starts a real server with a simulated fleet and isolates the CLI
// from the developer's environment and config file.
func cliEnv(t *testing.T) *apitest.Env {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("LIGHTSOUT_SERVER", "")
	t.Setenv("LIGHTSOUT_TOKEN", "")
	t.Setenv("LIGHTSOUT_PASSWORD", "")
	return apitest.Start(t, apitest.Options{Subnet: 92,
		Fleet: sim.Config{Count: 8, Seed: 5, Enclosures: []sim.EnclosureConfig{{Name: "enc-a", Blades: 2}}}})
}

// as runs the CLI against e with the role's token file.
func as(t *testing.T, e *apitest.Env, role store.Role, args ...string) (string, int, error) {
	t.Helper()
	return runCLI(t, append(args, "--server", e.URL, "--token-file", e.TokenFiles[role])...)
}

func wantExit(t *testing.T, what string, out string, code int, err error, wantCode int, wants ...string) {
	t.Helper()
	text := out
	if err != nil {
		text += "\nERR: " + err.Error()
	}
	if code != wantCode {
		t.Errorf("%s: exit %d, want %d\n%s", what, code, wantCode, text)
		return
	}
	for _, w := range wants {
		if !strings.Contains(text, w) {
			t.Errorf("%s: output lacks %q\n%s", what, w, text)
		}
	}
}

func TestCLIThroughServer(t *testing.T) {
	e := cliEnv(t)
	const (
		admin    = store.RoleAdmin
		operator = store.RoleOperator
		viewer   = store.RoleViewer
	)

	// Import: a bad file is refused with its line and field, nothing stored.
	bad := filepath.Join(filepath.Dir(e.Inventory), "bad.yaml")
	b, _ := os.ReadFile(e.Inventory)
	lines := strings.Split(string(b), "\n")
	badLine := 0
	for i, l := range lines {
		if strings.Contains(l, "address:") && strings.Contains(strings.Join(lines[:i], "\n"), "machines:") {
			lines[i] = l[:strings.Index(l, "address:")] + "address: 10.0.0.300"
			badLine = i + 1
			break
		}
	}
	os.WriteFile(bad, []byte(strings.Join(lines, "\n")), 0o600)
	out, code, err := as(t, e, operator, "import", bad)
	wantExit(t, "bad import", out, code, err, 2, "address")
	if err != nil && !strings.Contains(err.Error(), ":"+itoa(badLine)+":") {
		t.Errorf("bad import does not name line %d: %v", badLine, err)
	}
	out, code, err = as(t, e, viewer, "machines", "list")
	wantExit(t, "list after a refused import", out, code, err, 0, "no machines")

	out, code, err = as(t, e, operator, "import", e.Inventory)
	wantExit(t, "import", out, code, err, 0, "imported 8 machines and 1 enclosures")
	out, code, err = as(t, e, operator, "import", e.Inventory)
	wantExit(t, "import again", out, code, err, 2, "already exists")

	// Check through the server.
	out, code, err = as(t, e, operator, "check", "bmc-00001", "bmc-00002", "bmc-00003", "bmc-00004")
	wantExit(t, "check", out, code, err, 0, "bmc-00001", "Connectable", "4 BMCs")
	if err := e.Fleet.SetFaults("bmc-00004", sim.Faults{Silent: true}); err != nil {
		t.Fatal(err)
	}
	out, code, err = as(t, e, operator, "check", "bmc-00004", "bmc-00006", "bmc-00007", "bmc-00008", "bmc-00005")
	wantExit(t, "check a silent BMC", out, code, err, 1, "NotResponding", "silent", "bmc-00004: nothing came back")
	out, code, err = as(t, e, operator, "check", "bmc-00004", "-o", "json")
	var cr map[string]any
	if json.Unmarshal([]byte(strings.TrimSpace(out)), &cr) != nil || cr["machine"] != "bmc-00004" || cr["remedy"] == nil {
		t.Errorf("check -o json: %s (%v)", out, err)
	}
	out, code, err = as(t, e, operator, "check", "bmc-00004", "--timeout", "1s")
	wantExit(t, "check NAME --timeout", out, code, err, 2, "--timeout")
	out, code, err = as(t, e, operator, "check", "ghost")
	wantExit(t, "check unknown", out, code, err, 2, "ghost")

	// Listing and showing.
	out, code, err = as(t, e, viewer, "machines", "list")
	wantExit(t, "machines list", out, code, err, 0, "bmc-00008", "NotResponding")
	out, code, err = as(t, e, viewer, "machines", "show", "bmc-00004")
	wantExit(t, "machines show", out, code, err, 0, "remedy:", "UDP 623")
	out, code, err = as(t, e, viewer, "machines", "list", "-o", "json")
	if n := strings.Count(strings.TrimSpace(out), "\n") + 1; code != 0 || n != 8 {
		t.Errorf("machines list -o json: %d lines, exit %d", n, code)
	}

	// Power: refused, forbidden, done.
	bmc3, _ := e.Fleet.BMC("bmc-00003")
	e.Fleet.SetPower("bmc-00003", true)
	out, code, err = as(t, e, viewer, "power", "off", "bmc-00003")
	wantExit(t, "viewer power off", out, code, err, 1, "needs role operator")
	if strings.Contains(out, "MACHINE") {
		t.Errorf("a refused power off printed the table header:\n%s", out)
	}
	out, code, err = as(t, e, operator, "power", "off", "bmc-00003", "bmc-00004")
	wantExit(t, "power off", out, code, err, 1, "bmc-00003", "ok", "refused", "NotResponding", "1 ok, 1 refused")
	if bmc3.PowerOn() {
		t.Error("power off left the simulated BMC on")
	}
	out, code, err = as(t, e, operator, "machines", "set", "bmc-00006", "--group", "g1")
	wantExit(t, "machines set", out, code, err, 0, "group:")
	as(t, e, operator, "machines", "set", "bmc-00007", "--group", "g1")
	out, code, err = as(t, e, viewer, "power", "status", "--group", "g1", "--batch", "1", "--interval", "100ms", "-o", "json")
	wantExit(t, "power status --group", out, code, err, 0, `"batch":2`, `"summary":{"ok":2`)
	out, code, err = as(t, e, operator, "power", "explode", "bmc-00001")
	wantExit(t, "bad action", out, code, err, 2, "identify-on")
	out, code, err = as(t, e, operator, "power", "status", "bmc-00001", "--interval", "5s")
	wantExit(t, "interval without batch", out, code, err, 2, "--batch")
	out, code, err = as(t, e, operator, "power", "status")
	wantExit(t, "power without machines", out, code, err, 2, "--group")

	// Add, edit, remove a machine and its account.
	pw := writeFile(t, "pw", e.Fleet.Password())
	out, code, err = as(t, e, operator, "machines", "add", "extra", "--address", "127.0.0.1", "--port", "99999", "--user", "admin", "--password-file", pw)
	wantExit(t, "add bad port", out, code, err, 2, "--port")
	out, code, err = as(t, e, operator, "machines", "add", "extra", "--address", "300.1.1.1:x", "--user", "admin", "--password-file", pw)
	wantExit(t, "add bad address", out, code, err, 2, "address")
	out, code, err = as(t, e, operator, "machines", "add", "extra", "--user", "admin", "--password-file", pw)
	wantExit(t, "add without address", out, code, err, 2, "--address")
	out, code, err = as(t, e, operator, "machines", "add", "extra", "--address", "127.0.0.1", "--port", "9", "--user", "admin",
		"--password-file", pw, "--group", "lab", "--tag", "a", "--tag", "b")
	wantExit(t, "add", out, code, err, 0, "added extra")
	out, code, err = as(t, e, viewer, "accounts", "list", "--machine", "extra", "-o", "json")
	var acct struct {
		Account struct {
			ID   int64  `json:"id"`
			User string `json:"user"`
		} `json:"account"`
	}
	if err := json.Unmarshal([]byte(out), &acct); err != nil || acct.Account.ID == 0 {
		t.Fatalf("accounts list: %v\n%s", err, out)
	}
	id := itoa(int(acct.Account.ID))
	out, code, err = as(t, e, operator, "accounts", "set", id, "--user", "root")
	wantExit(t, "accounts set", out, code, err, 0, "updated account")
	out, code, err = as(t, e, viewer, "accounts", "show", id)
	wantExit(t, "accounts show", out, code, err, 0, `user "root"`)
	out, code, err = as(t, e, viewer, "accounts", "show", "abc")
	wantExit(t, "accounts show abc", out, code, err, 2, "account ID")
	out, code, err = as(t, e, operator, "accounts", "set", id)
	wantExit(t, "accounts set nothing", out, code, err, 2, "nothing to change")
	// The password is bound to the address: moving needs it again, or
	// an admin's --keep-password.
	out, code, err = as(t, e, operator, "accounts", "set", id, "--port", "10")
	wantExit(t, "accounts set --port without the password", out, code, err, 2, "password")
	out, code, err = as(t, e, operator, "accounts", "set", id, "--port", "10", "--keep-password")
	wantExit(t, "operator --keep-password", out, code, err, 1, "keep_password")
	out, code, err = as(t, e, admin, "accounts", "set", id, "--port", "10", "--keep-password")
	wantExit(t, "admin --keep-password", out, code, err, 0, "updated account")
	out, code, err = as(t, e, operator, "accounts", "set", id, "--port", "11", "--password-file", pw)
	wantExit(t, "accounts set --port with the password", out, code, err, 0, "updated account")
	out, code, err = as(t, e, operator, "accounts", "set", id, "--cipher-suites", "17,0")
	wantExit(t, "accounts set --cipher-suites 17,0", out, code, err, 2, "cipher_suites", "suite 0")
	out, code, err = as(t, e, operator, "accounts", "set", id, "--cipher-suites", "17,3")
	wantExit(t, "accounts set --cipher-suites 17,3", out, code, err, 0, "updated account")
	out, code, err = as(t, e, operator, "machines", "rm", "extra")
	wantExit(t, "operator rm", out, code, err, 1, "needs role admin")
	out, code, err = as(t, e, admin, "machines", "rm", "extra")
	wantExit(t, "admin rm", out, code, err, 0, "removed extra")
	out, code, err = as(t, e, viewer, "machines", "show", "extra")
	wantExit(t, "show removed", out, code, err, 2, `no machine named "extra"`)

	// Enclosures.
	out, code, err = as(t, e, viewer, "enclosures", "list")
	wantExit(t, "enclosures list", out, code, err, 0, "enc-a")
	out, code, err = as(t, e, operator, "enclosures", "add", "enc-b", "--address", "127.0.0.1", "--slots", "99")
	wantExit(t, "enclosure 99 slots", out, code, err, 2, "slots")
	out, code, err = as(t, e, operator, "enclosures", "add", "shelf-b", "--address", "127.0.0.9", "--slots", "4", "--kind", "ipmb", "--ipmb", "0x83+2")
	wantExit(t, "enclosure with an odd IPMB address", out, code, err, 2, "ipmb", "not an IPMB slave address")
	out, code, err = as(t, e, operator, "enclosures", "add", "shelf-b", "--address", "127.0.0.9", "--slots", "4", "--kind", "ipmb")
	wantExit(t, "ipmb enclosure", out, code, err, 0, "added enclosure shelf-b")
	out, code, err = as(t, e, viewer, "enclosures", "list")
	wantExit(t, "enclosures list with kinds", out, code, err, 0, "KIND", "ipmb 0x82+2", "oem")
	out, code, err = as(t, e, admin, "enclosures", "rm", "shelf-b")
	wantExit(t, "rm ipmb enclosure", out, code, err, 0, "removed enclosure shelf-b")

	// Lifecycle.
	as(t, e, operator, "machines", "set", "bmc-00008", "--spare")
	out, code, err = as(t, e, operator, "replace", "bmc-00007", "--by", "bmc-00008")
	wantExit(t, "replace", out, code, err, 0, `bmc-00008 replaced bmc-00007 (group "g1"`)
	out, code, err = as(t, e, operator, "adopt", "bmc-00005")
	wantExit(t, "operator adopt", out, code, err, 1, "needs role admin")
	out, code, err = as(t, e, admin, "adopt", "bmc-00005", "--guid", "nonsense")
	wantExit(t, "adopt bad guid", out, code, err, 2, "--guid")
	out, code, err = as(t, e, admin, "register", "bmc-00002")
	wantExit(t, "register", out, code, err, 0, "awaits its first Connectable check")
	out, code, err = as(t, e, operator, "allocate", "--group", "db", "bmc-00001", "bmc-00004")
	wantExit(t, "allocate", out, code, err, 1, "1 ok, 1 refused")

	// History, events, audit.
	out, code, err = as(t, e, viewer, "history", "bmc-00004")
	wantExit(t, "history", out, code, err, 0, "Connectable", "NotResponding", "silent")
	out, code, err = as(t, e, viewer, "history", "bmc-00004", "--limit", "0")
	wantExit(t, "history --limit 0", out, code, err, 2, "--limit")
	out, code, err = as(t, e, viewer, "events", "--since", "1h", "--code", "oob.state_changed")
	wantExit(t, "events", out, code, err, 0, "bmc-00004")
	out, code, err = as(t, e, viewer, "events", "--since", "last tuesday")
	wantExit(t, "events bad since", out, code, err, 2, "--since")
	out, code, err = as(t, e, operator, "audit", "--target", "bmc-00003")
	wantExit(t, "audit", out, code, err, 0, "power.off", "operator")
	out, code, err = as(t, e, viewer, "audit")
	wantExit(t, "viewer audit", out, code, err, 1, "needs role operator")

	// Export.
	csv := filepath.Join(t.TempDir(), "out.csv")
	out, code, err = as(t, e, viewer, "export", "--out", csv)
	wantExit(t, "export", out, code, err, 0)
	if b, _ := os.ReadFile(csv); !strings.Contains(string(b), "bmc-00001") || strings.Contains(string(b), e.Fleet.Password()) {
		t.Errorf("exported CSV:\n%s", b)
	}
	out, code, err = as(t, e, viewer, "export", "-o", "xml")
	wantExit(t, "export xml", out, code, err, 2, "--output", "yaml or csv")
	// -o is the format here too; a file name given to it is pointed at --out.
	out, code, err = as(t, e, viewer, "export", "-o", csv)
	wantExit(t, "export -o FILE", out, code, err, 2, "--out "+csv)
}

func TestCLITokensAndConfig(t *testing.T) {
	e := cliEnv(t)
	// No token anywhere: exit 2 saying where to put one.
	out, code, err := runCLI(t, "machines", "list", "--server", e.URL)
	wantExit(t, "no token", out, code, err, 2, "no API token", "--token-file")
	// A token from the environment.
	t.Setenv("LIGHTSOUT_TOKEN", e.Tokens[store.RoleViewer])
	out, code, err = runCLI(t, "machines", "list", "--server", e.URL)
	wantExit(t, "LIGHTSOUT_TOKEN", out, code, err, 0)
	t.Setenv("LIGHTSOUT_TOKEN", "lso_wrong")
	out, code, err = runCLI(t, "machines", "list", "--server", e.URL)
	wantExit(t, "wrong token", out, code, err, 1, "unknown API token")
	t.Setenv("LIGHTSOUT_TOKEN", "")

	// The config file names the server and the token file.
	cfgDir := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "lightsout")
	os.MkdirAll(cfgDir, 0o700)
	os.WriteFile(filepath.Join(cfgDir, "cli.yaml"), []byte("server: "+e.URL+"\ntoken_file: "+e.TokenFiles[store.RoleAdmin]+"\n"), 0o600)
	out, code, err = runCLI(t, "token", "list")
	wantExit(t, "config file", out, code, err, 0, "admin", "operator", "viewer")
	other := writeFile(t, "other.yaml", "server: "+e.URL+"\ntokenfile: x\n")
	out, code, err = runCLI(t, "token", "list", "--config", other)
	wantExit(t, "bad config", out, code, err, 2, "tokenfile")

	// Create through the API, use, revoke.
	tf := filepath.Join(t.TempDir(), "ci.token")
	out, code, err = runCLI(t, "token", "create", "--name", "ci", "--role", "operator", "--out", tf)
	wantExit(t, "token create", out, code, err, 0, "secret is in")
	if st, err := os.Stat(tf); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", st, err)
	}
	if strings.Contains(out, "lso_") {
		t.Errorf("the secret was printed although --out was given: %s", out)
	}
	out, code, err = runCLI(t, "check", "bmc-00001", "--token-file", tf)
	if code != 2 || !strings.Contains(err.Error(), "bmc-00001") { // no machines imported: not_found
		t.Errorf("check with the new token: exit %d %v\n%s", code, err, out)
	}
	out, code, err = runCLI(t, "token", "create", "--name", "ci", "--role", "operator")
	wantExit(t, "duplicate token", out, code, err, 2, "already exists")
	out, code, err = runCLI(t, "token", "create", "--name", "bad name", "--role", "operator")
	wantExit(t, "bad token name", out, code, err, 2, "--name")
	out, code, err = runCLI(t, "token", "create", "--name", "x", "--role", "root")
	wantExit(t, "bad role", out, code, err, 2, "--role")
	out, code, err = runCLI(t, "token", "revoke", "ci")
	wantExit(t, "revoke", out, code, err, 0)
	out, code, err = runCLI(t, "machines", "list", "--token-file", tf)
	wantExit(t, "revoked token", out, code, err, 1, "revoked")

	// Bootstrap without a server: --data on the server's directory.
	data := filepath.Join(e.Dir, "data")
	tf2 := filepath.Join(t.TempDir(), "boot.token")
	out, code, err = runCLI(t, "token", "create", "--name", "boot", "--role", "admin", "--data", data, "--out", tf2)
	wantExit(t, "token create --data", out, code, err, 0)
	out, code, err = runCLI(t, "token", "list", "--token-file", tf2)
	wantExit(t, "direct token works through the API", out, code, err, 0, "boot")
	out, code, err = runCLI(t, "token", "create", "--name", "x", "--role", "admin", "--data", filepath.Join(e.Dir, "nope"))
	wantExit(t, "--data typo", out, code, err, 2, "no database there")
	out, code, err = runCLI(t, "token", "create", "--name", "x", "--role", "admin", "--db", "postgres://u:secret@127.0.0.1/x", "--key-file", "k")
	wantExit(t, "--db with a password", out, code, err, 2, "PGPASSWORD")
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
