package gather_test

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/audit"
	"github.com/lightsout/lightsout/internal/diag"
	"github.com/lightsout/lightsout/internal/diag/gather"
	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/peertest"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// TestDiagnosisInsecureIPMISim: a channel that works on an insecure BMC —
// OpenIPMI's ipmi_sim offering IPMI 1.5 authentication none and straight
// password, with a second account left at the ADMIN/ADMIN default — is
// diagnosed insecure, not healthy: from the check alone, each weak
// authentication type with the ipmitool command that fixes it; with the
// security audit's findings (a real audit of the same BMC), the default
// password too.
func TestDiagnosisInsecureIPMISim(t *testing.T) {
	raw := guid.GUID{0xa1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe}
	lan := `    priv_limit admin
    allowed_auths_callback none md5 straight
    allowed_auths_user none md5 straight
    allowed_auths_operator none md5 straight
    allowed_auths_admin none md5 straight
    guid ` + raw.Hex() + `
  endlan
  user 2 true "admin" "insecure-pw-1" admin 10 md5 none straight
  user 3 true "ADMIN" "ADMIN" admin 10 md5
`
	emu := "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n"
	eng, err := ipmi.New(ipmi.Config{Sockets: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	bmc := peertest.StartIPMISim(t, "lightsout-insecure", lan, emu, func(a netip.AddrPort) bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := eng.Ping(ctx, a)
		return err == nil
	})
	ctx := context.Background()
	box, err := secret.NewRandomBox()
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(t.TempDir(), "l.db"), Box: box})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m := store.Machine{Name: "sim-1", GUID: raw.IPMI()}
	if err := st.AddMachine(ctx, &m); err != nil {
		t.Fatal(err)
	}
	a := store.Account{MachineID: m.ID, Protocol: "ipmi", Address: bmc.Addr.Addr().String(), Port: int(bmc.Addr.Port()),
		User: "admin", Password: []byte("insecure-pw-1"), CipherSuite: 3}
	if err := st.AddAccount(ctx, &a); err != nil {
		t.Fatal(err)
	}
	x := &gather.Executor{Store: st, Engine: eng, Timeout: 2 * time.Second}

	d := x.Run(ctx, m, a).Diagnosis
	text := strings.Join(append([]string{d.Summary, d.Remedy}, d.Evidence...), "\n")
	if d.Cause != diag.CauseInsecure || d.Confidence != diag.High || d.Healthy() ||
		!strings.Contains(text, "IPMI 1.5 authentication type none offered") || !strings.Contains(text, "straight password") ||
		!strings.Contains(d.Remedy, "weak_auth: allow only MD5 for IPMI 1.5 at every privilege level — ipmitool lan set 1 auth ADMIN MD5") {
		t.Fatalf("from the check: %s (%s)\n%s", d.Cause, d.Confidence, text)
	}

	// The security audit of the same BMC: the manager hands its findings
	// to the diagnosis.
	r := audit.Run(ctx, eng, probe.Target{Name: m.Name, Addr: bmc.Addr, User: a.User, Password: a.Password, CipherSuite: 3, Timeout: 2 * time.Second})
	if !r.Complete {
		t.Fatalf("audit incomplete: %s", r.Error)
	}
	x.Security = func(int64) []diag.SecurityFinding {
		var out []diag.SecurityFinding
		for _, f := range r.Findings {
			out = append(out, diag.SecurityFinding{Code: string(f.Code), Subject: f.Subject, Message: f.Message, Remedy: f.Remedy, Source: "audit"})
		}
		return out
	}
	d = x.Run(ctx, m, a).Diagnosis
	text = strings.Join(append([]string{d.Summary, d.Remedy}, d.Evidence...), "\n")
	if d.Cause != diag.CauseInsecure || !strings.Contains(d.Summary, "default_password") ||
		!strings.Contains(d.Remedy, `default_password (ADMIN): change the password of "ADMIN" on the BMC (ipmitool user set password ID)`) ||
		!strings.Contains(text, "found by the security audit") {
		t.Fatalf("with the audit: %s\n%s", d.Cause, text)
	}
}
