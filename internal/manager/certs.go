package manager

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
)

// AcceptCertificate re-pins the TLS certificate of a machine's Redfish
// BMC (admin only) after it changed (Invalid / cert_changed). With
// fingerprint empty, the certificate the BMC presented at the channel's
// last check is accepted, and the channel must be Invalid / cert_changed;
// an explicit fingerprint (hex SHA-256, colons and a "sha256:" prefix
// allowed) is pinned whatever the state. The change is audited and the
// channel re-checked at once.
func (m *Manager) AcceptCertificate(ctx context.Context, actor Actor, name, fingerprint string) (err error) {
	detail := ""
	defer func() { m.audit(ctx, actor, "machine.accept_certificate", name, detail, err) }()
	if err := m.require(actor, store.RoleAdmin, "accepting a changed certificate"); err != nil {
		return err
	}
	mc, err := m.Store.Machine(ctx, name)
	if err != nil {
		return err
	}
	accts, err := m.Store.AccountsOf(ctx, mc.ID)
	if err != nil {
		return err
	}
	var ids []int64
	for _, a := range accts {
		if a.Protocol == "redfish" {
			ids = append(ids, a.ID)
		}
	}
	if len(ids) == 0 {
		return fieldErr("name", "the machine has no Redfish account: only Redfish BMCs have a pinned certificate")
	}
	fp := normalizeFingerprint(fingerprint)
	if fp != "" && (len(fp) != 64 || strings.Trim(fp, "0123456789abcdef") != "") {
		return fieldErr("fingerprint", "must be a SHA-256 fingerprint: 64 hexadecimal digits")
	}
	if fp == "" {
		for _, id := range ids {
			cs, ok := m.Monitor.Get(id)
			if !ok || cs.State != state.Invalid || cs.Reason != state.ReasonCertChanged {
				continue
			}
			if seen := m.presentedCert(ctx, id); seen != "" {
				fp = seen
				break
			}
		}
		if fp == "" {
			return fieldErr("fingerprint", "the channel is not Invalid / cert_changed, or its evidence holds no certificate: nothing to accept; check the machine first, or give the fingerprint explicitly")
		}
	}
	old, err := m.Store.CertPin(ctx, name)
	if err != nil {
		return err
	}
	if old == probe.AwaitingPin {
		old = "" // cleared by an address change
	}
	if strings.EqualFold(old, fp) {
		return fieldErr("fingerprint", "this certificate is already pinned")
	}
	if err := m.Store.PinCert(ctx, name, fp); err != nil {
		return err
	}
	detail = fmt.Sprintf("changed certificate pin from %s to %s because an admin accepted it", orNone(old), fp)
	// Re-check now so the channel leaves Invalid without waiting.
	_, _ = m.Monitor.CheckNow(ctx, ids)
	return nil
}

// presentedCert is the certificate fingerprint in the channel's last
// stored evidence, "" when none.
func (m *Manager) presentedCert(ctx context.Context, accountID int64) string {
	cs, err := m.Store.State(ctx, accountID)
	if err != nil || len(cs.Evidence) == 0 {
		return ""
	}
	var ev probe.Evidence
	if json.Unmarshal(cs.Evidence, &ev) != nil || ev.Redfish == nil {
		return ""
	}
	return ev.Redfish.CertSHA256
}

// normalizeFingerprint accepts "sha256:AB:CD…", "AB CD…" or plain hex.
func normalizeFingerprint(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "sha256:")
	s = strings.NewReplacer(":", "", " ", "", "-", "").Replace(s)
	return s
}
