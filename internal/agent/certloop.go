package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lightsout/lightsout/internal/pki"
)

// The certificate loop: expiry warnings, renewal, the key and certificate files.

// certLoop watches both certificates' expiry: a warning (an event, at
// most daily) and a renewal once within RenewBefore; an event and an audit
// entry when one has expired.
func (a *agentd) certLoop(ctx context.Context) {
	defer a.wg.Done()
	t := time.NewTicker(a.cfg.CertCheck)
	defer t.Stop()
	for {
		a.checkCerts(ctx, false)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.certKick:
		}
	}
}

// checkCerts renews what is due (everything when force) and reports
// what it did.
func (a *agentd) checkCerts(ctx context.Context, force bool) []string {
	var did []string
	now := a.cfg.Clock()
	for _, kind := range []string{"agent", "link"} {
		cert := a.loadCert(kind)
		view := &CertView{Kind: kind}
		switch {
		case cert == nil:
			view.State = CertMissing
		default:
			view.NotAfter = cert.NotAfter
			left := cert.NotAfter.Sub(now)
			view.DaysLeft = int(left.Hours() / 24)
			switch {
			case left <= 0:
				view.State = CertExpired
			case left <= a.cfg.RenewBefore:
				view.State = CertExpiring
			default:
				view.State = CertOK
			}
		}
		a.mu.Lock()
		a.certs[kind] = view
		a.mu.Unlock()
		switch view.State {
		case CertExpired:
			a.mu.Lock()
			first := !a.expired[kind]
			a.expired[kind] = true
			a.mu.Unlock()
			if first {
				if kind == "link" && a.cfg.Link != nil {
					kick(a.linkKick) // the link fails now: say so at once
				}
				msg := fmt.Sprintf("agent %s: its %s certificate expired at %s", a.cfg.Name, kind, view.NotAfter.Format(time.RFC3339))
				a.audit("certificate expired", msg)
				a.queueEvent(Event{At: now, Code: EvCertExpired, Severity: "critical", Message: msg + ": " + certRemedy(kind),
					Data: mustJSON(map[string]any{"kind": kind, "not_after": view.NotAfter})})
			}
		case CertExpiring:
			a.mu.Lock()
			last := a.warned[kind]
			warn := last.IsZero() || now.Sub(last) >= 24*time.Hour || now.Before(last)
			if warn {
				a.warned[kind] = now
			}
			a.mu.Unlock()
			if warn {
				msg := fmt.Sprintf("agent %s: its %s certificate expires in %d days (%s); renewing", a.cfg.Name, kind, view.DaysLeft, view.NotAfter.Format(time.RFC3339))
				a.queueEvent(Event{At: now, Code: EvCertExpiring, Severity: "warning", Message: msg,
					Data: mustJSON(map[string]any{"kind": kind, "not_after": view.NotAfter, "days_left": view.DaysLeft})})
			}
		}
		// The agent's own certificate cannot be renewed once expired (no
		// manager accepts it); the link's can, over the agent channel.
		due := view.State == CertMissing || view.State == CertExpiring || (view.State == CertExpired && kind == "link") || force
		if !due {
			continue
		}
		if err := a.renew(ctx, kind); err != nil {
			if !errors.Is(err, ErrNoManager) {
				a.cfg.Logger.Warn("agent: certificate renewal", "kind", kind, "err", err)
			}
			a.mu.Lock()
			view.RenewError = err.Error()
			a.mu.Unlock()
			continue
		}
		did = append(did, kind)
		if c := a.loadCert(kind); c != nil {
			left := c.NotAfter.Sub(a.cfg.Clock())
			a.mu.Lock()
			view.State, view.NotAfter, view.DaysLeft, view.RenewError = CertOK, c.NotAfter, int(left.Hours()/24), ""
			a.mu.Unlock()
		}
	}
	a.writeStatus(true)
	return did
}

func certRemedy(kind string) string {
	if kind == "link" {
		return "the agent renews it through its manager as soon as one is connected (`lightsout agent op NAME renew-certs`)"
	}
	return "enroll the agent again: `lightsout agent token create` on the manager, the token into the agent's --token-file (0600); the running agent picks it up"
}

func (a *agentd) certFiles(kind string) (certPath, keyPath string) {
	if kind == "link" {
		return filepath.Join(a.cfg.DataDir, LinkCertFile), filepath.Join(a.cfg.DataDir, LinkKeyFile)
	}
	return filepath.Join(a.cfg.DataDir, CertFile), filepath.Join(a.cfg.DataDir, KeyFile)
}

func (a *agentd) loadCert(kind string) *x509.Certificate {
	a.idMu.Lock()
	defer a.idMu.Unlock()
	cp, _ := a.certFiles(kind)
	b, err := os.ReadFile(cp)
	if err != nil {
		return nil
	}
	c, err := pki.ParseCertPEM(b)
	if err != nil {
		return nil
	}
	return c
}

// renew asks a manager to sign a new key's CSR and swaps the files.
func (a *agentd) renew(ctx context.Context, kind string) error {
	key, csr, err := pki.NewCSR(a.cfg.Name)
	if err != nil {
		return err
	}
	r, err := a.request(ctx, msg{Type: "renew", Kind: kind, CSR: csr})
	if err != nil {
		return err
	}
	kp, err := pki.KeyPEM(key)
	if err != nil {
		return err
	}
	pair, err := tls.X509KeyPair(r.Cert, kp)
	if err != nil {
		return fmt.Errorf("the renewed %s certificate does not match our key: %w", kind, err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return err
	}
	caPEM, err := os.ReadFile(filepath.Join(a.cfg.DataDir, CAFile))
	if err != nil {
		return err
	}
	ca, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: cert.NotBefore.Add(time.Minute)}); err != nil {
		return fmt.Errorf("the renewed %s certificate is not from the trusted CA: %w", kind, err)
	}
	cp, kpath := a.certFiles(kind)
	a.idMu.Lock()
	err = swapFiles(kpath, kp, 0o600, cp, r.Cert, 0o644)
	if kind == "link" && err == nil {
		pair.Leaf = cert
		a.linkCert = &pair
	}
	a.idMu.Unlock()
	if err != nil {
		return err
	}
	a.mu.Lock()
	delete(a.warned, kind)
	delete(a.expired, kind)
	a.mu.Unlock()
	a.audit("certificate renewed", fmt.Sprintf("%s certificate renewed until %s", kind, cert.NotAfter.Format(time.RFC3339)))
	a.emit("renewed: " + kind)
	if kind == "link" {
		kick(a.linkKick)
	}
	return nil
}

// swapFiles replaces a key and its certificate: both written beside, then
// renamed key first (a reader between the renames fails to pair them and
// tries again; it never sees a half-written file).
func swapFiles(keyPath string, key []byte, keyPerm os.FileMode, certPath string, cert []byte, certPerm os.FileMode) error {
	kt, ct := keyPath+".new", certPath+".new"
	os.Remove(kt)
	os.Remove(ct)
	if err := pki.WriteFile(kt, key, keyPerm); err != nil {
		return err
	}
	if err := pki.WriteFile(ct, cert, certPerm); err != nil {
		return err
	}
	if err := os.Rename(kt, keyPath); err != nil {
		return err
	}
	return os.Rename(ct, certPath)
}

// currentLinkCert is the host link's client certificate (cached).
func (a *agentd) currentLinkCert() *tls.Certificate {
	a.idMu.Lock()
	defer a.idMu.Unlock()
	if a.linkCert != nil {
		return a.linkCert
	}
	cp, kp := a.certFiles("link")
	pair, err := tls.LoadX509KeyPair(cp, kp)
	if err != nil {
		return nil
	}
	a.linkCert = &pair
	return a.linkCert
}
