package agent

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lightsout/lightsout/internal/pki"
)

// The agent's own view: status.json and audit.log, read by `agent status`.

// Manager connection states in the agent's view.
const (
	MgrUp          = "Up"
	MgrConnecting  = "Connecting"
	MgrRefused     = "Refused"     // connected, the manager refused us (reason)
	MgrUnreachable = "Unreachable" // no connection, or it was lost
	MgrUntrusted   = "Untrusted"   // its certificate is not from the CA the agent trusts
)

// ManagerView is one manager as the agent sees it.
type ManagerView struct {
	Address    string    `json:"address"`
	State      string    `json:"state"`
	Reason     string    `json:"reason,omitempty"`
	NodeID     int64     `json:"node_id,omitempty"`
	Since      time.Time `json:"since"`
	LastAck    time.Time `json:"last_ack,omitzero"`
	Discovered bool      `json:"discovered"`
}

// Certificate states in the agent's view.
const (
	CertOK       = "ok"
	CertExpiring = "expiring"
	CertExpired  = "expired"
	CertMissing  = "missing"
)

// CertView is one of the agent's certificates.
type CertView struct {
	Kind       string    `json:"kind"` // agent, link
	State      string    `json:"state"`
	NotAfter   time.Time `json:"not_after,omitzero"`
	DaysLeft   int       `json:"days_left"`
	RenewError string    `json:"renew_error,omitempty"`
}

// LocalStatus is the agent's view of itself, written to StatusFile.
type LocalStatus struct {
	PID      int           `json:"pid"`
	Name     string        `json:"name"`
	Version  string        `json:"version"`
	Updated  time.Time     `json:"updated"`
	Managers []ManagerView `json:"managers"`
	Certs    []CertView    `json:"certs"`
	Link     *LinkStatus   `json:"link,omitempty"`
	Queued   int           `json:"queued"`
	Dropped  int           `json:"dropped"`
	// CAFingerprint is the manager CA the agent trusts.
	CAFingerprint string `json:"ca_fingerprint"`
}

func (a *agentd) writeStatus(force bool) {
	// One writer at a time, snapshot included: two interleaved into the
	// same temporary file would leave a status no reader can parse, and an
	// older snapshot written last would hide the newer one.
	a.statusMu.Lock()
	defer a.statusMu.Unlock()
	a.mu.Lock()
	if !force && time.Since(a.lastWrite) < 10*time.Second {
		a.mu.Unlock()
		return
	}
	a.lastWrite = time.Now()
	st := LocalStatus{PID: os.Getpid(), Name: a.cfg.Name, Version: a.cfg.Version, Updated: time.Now(),
		Queued: len(a.outbox), Dropped: a.dropped, Managers: []ManagerView{}, Certs: []CertView{}}
	for _, v := range a.views {
		st.Managers = append(st.Managers, *v)
	}
	for _, k := range []string{"agent", "link"} {
		if v := a.certs[k]; v != nil {
			st.Certs = append(st.Certs, *v)
		}
	}
	if a.link != nil {
		l := *a.link
		st.Link = &l
	}
	a.mu.Unlock()
	slices.SortFunc(st.Managers, func(x, y ManagerView) int { return strings.Compare(x.Address, y.Address) })
	if b, err := os.ReadFile(filepath.Join(a.cfg.DataDir, CAFile)); err == nil {
		if ca, err := pki.ParseCertPEM(b); err == nil {
			st.CAFingerprint = pki.Fingerprint(ca)
		}
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	p := filepath.Join(a.cfg.DataDir, StatusFile)
	tmp := p + ".new"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err == nil {
		os.Rename(tmp, p)
	}
}

// ReadLocalStatus reads the status a running (or stopped) agent wrote in
// dir.
func ReadLocalStatus(dir string) (LocalStatus, error) {
	var st LocalStatus
	b, err := os.ReadFile(filepath.Join(dir, StatusFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("%s: %w", filepath.Join(dir, StatusFile), err)
	}
	return st, nil
}

// AuditRecord is one line of the agent's audit log.
type AuditRecord struct {
	At     time.Time `json:"at"`
	Agent  string    `json:"agent"`
	Action string    `json:"action"`
	Detail string    `json:"detail"`
}

// maxAudit is the audit log's size before it is rotated (one old file
// kept: AuditFile + ".1").
const maxAudit = 1 << 20

var auditMu sync.Mutex

func (a *agentd) audit(action, detail string) {
	a.cfg.Logger.Info("agent audit", "action", action, "detail", detail)
	auditMu.Lock()
	defer auditMu.Unlock()
	p := filepath.Join(a.cfg.DataDir, AuditFile)
	if fi, err := os.Stat(p); err == nil && fi.Size() > maxAudit {
		os.Rename(p, p+".1")
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	b, _ := json.Marshal(AuditRecord{At: a.cfg.Clock(), Agent: a.cfg.Name, Action: action, Detail: detail})
	f.Write(append(b, '\n'))
}

// ReadAudit returns the last n records of the agent's audit log in dir.
func ReadAudit(dir string, n int) ([]AuditRecord, error) {
	f, err := os.Open(filepath.Join(dir, AuditFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []AuditRecord
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for s.Scan() {
		var r AuditRecord
		if json.Unmarshal(s.Bytes(), &r) == nil {
			out = append(out, r)
			if len(out) > n {
				out = out[1:]
			}
		}
	}
	return out, s.Err()
}
