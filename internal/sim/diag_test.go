package sim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/peertest"
)

// The diagnosis faults through the control API: locked, bmc_key, em_link
// (blades only) and cipher_suites, with bad values refused naming the
// field.
func TestControlDiagFaults(t *testing.T) {
	f := newTestFleet(t, Config{Count: 3, Seed: 22, Enclosures: []EnclosureConfig{{Name: "enc-8", Blades: 1}}}, false)
	cs, err := f.ServeControl("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	put := func(name, body string) (int, map[string]any) {
		req, _ := http.NewRequest("PUT", cs.URL()+"/v1/bmcs/"+name+"/faults", strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		return resp.StatusCode, m
	}
	st, m := put("bmc-00001", `{"em_link": true, "cipher_suites": [17, 3]}`)
	if st != 200 {
		t.Fatalf("blade faults: %d %v", st, m)
	}
	if b, _ := f.BMC("bmc-00001"); !b.Faults().EMLink || b.Faults().CipherSuites != Suites(3, 17) {
		t.Errorf("faults %+v", b.Faults())
	}
	if fs, _ := m["faults"].(map[string]any); fs == nil || fs["cipher_suites"] == nil {
		t.Errorf("status faults %v", m["faults"])
	}
	if st, _ := put("bmc-00002", `{"locked": true}`); st != 200 {
		t.Errorf("locked: %d", st)
	}
	if st, _ := put("bmc-00003", `{"bmc_key": true}`); st != 200 {
		t.Errorf("bmc_key: %d", st)
	} else if b, _ := f.BMC("bmc-00003"); !b.Faults().BMCKey {
		t.Errorf("bmc_key: faults %+v", b.Faults())
	} else {
		// A console without the key: auth capabilities say K_G is set, and
		// the login fails after the password verified (RAKP 4).
		eng, err := ipmi.New(ipmi.Config{Sockets: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if caps, _, err := eng.AuthCaps(ctx, b.Addr(), ipmi.PrivilegeAdministrator); err != nil || !caps.KGNonZero {
			t.Errorf("bmc_key: auth capabilities %+v %v", caps, err)
		}
		_, err = eng.Open(ctx, b.Addr(), ipmi.Credentials{User: AdminUser, Password: []byte(f.Password())})
		var se *ipmi.StageError
		if !errors.Is(err, ipmi.ErrRejected) || !errors.As(err, &se) || se.Stage != ipmi.StageRAKP3 {
			t.Errorf("bmc_key: login %v", err)
		}
	}
	for _, c := range []struct{ name, body, field string }{
		{"bmc-00002", `{"em_link": true}`, "em_link"},
		{"enc-8", `{"em_link": true}`, "em_link"},
		{"bmc-00002", `{"cipher_suites": "17"}`, "cipher_suites"},
		{"bmc-00002", `{"cipher_suites": [8]}`, "cipher_suites"},
		{"bmc-00002", `{"cipher_suites": [40]}`, "cipher_suites"},
		{"bmc-00002", `{"bmc_key": "yes"}`, "bmc_key"},
	} {
		st, m := put(c.name, c.body)
		if st != 400 || m["field"] != c.field {
			t.Errorf("%s %s: %d %v", c.name, c.body, st, m)
		}
	}
	if got := (Faults{Locked: true, EMLink: true, BMCKey: true, CipherSuites: Suites(17)}).Names(); strings.Join(got, " ") != "locked em_link bmc_key cipher_suites=17" {
		t.Errorf("names %v", got)
	}
}

// TestInteropSessionInfo: ipmitool lists the session table the diagnosis
// reads: every slot, the active session with its console.
func TestInteropSessionInfo(t *testing.T) {
	peertest.Need(t, "ipmitool")
	f := newTestFleet(t, Config{Count: 1, Seed: 24}, true)
	b, _ := f.BMC("bmc-00001")
	out, err := ipmitool(t, b.Addr(), f.Password(), "session", "info", "all")
	if err != nil {
		t.Fatalf("ipmitool: %v\n%s", err, out)
	}
	if strings.Count(out, "session handle") != 4 || strings.Count(out, "console ip") != 1 || !strings.Contains(out, "ADMINISTRATOR") {
		t.Errorf("session info all:\n%s", out)
	}
}
