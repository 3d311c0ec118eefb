// Package audit is lightsout's BMC security audit: per BMC, at most once a
// day by default, it reads what the BMC offers before login (Get Channel
// Authentication Capabilities) and tries a handful of logins that must not
// work — cipher suite 0, the null user, the vendor's factory default
// credentials — through the same engine as every check (one session per
// BMC at a time, each closed at once). What it finds are Findings with
// stable codes, an operator's message and a remedy; a report per OOB
// account is stored with the history of its changes, and a change between
// two audits is a drift event.
//
// Run audits one BMC; Auditor schedules audits over the fleet, records
// reports and raises events; Diff (pure) is the drift between two audits.
// docs/security-audit.md explains what is checked and why it cannot lock
// an account.
package audit

import (
	"fmt"
	"sort"
	"strings"

	"github.com/lightsout/lightsout/internal/evcode"
	"github.com/lightsout/lightsout/internal/store"
)

// Code is a finding's stable code. The event raised when a code first
// appears on a BMC is "audit." + the code.
type Code string

// Finding codes.
const (
	// Cipher0Enabled: a session opened with RMCP+ cipher suite 0 — no
	// authentication: any password works for any user name.
	Cipher0Enabled Code = "cipher0_enabled"
	// AnonymousLogin: the anonymous or a null user is enabled (capability
	// bits), or a session opened with an empty user name and password.
	AnonymousLogin Code = "anonymous_login"
	// WeakAuth: IPMI 1.5 authentication type none, straight password or
	// MD2 is offered.
	WeakAuth Code = "weak_auth"
	// DefaultPassword: an account logs in with its vendor's factory
	// default password.
	DefaultPassword Code = "default_password"
)

// Codes lists every finding code.
var Codes = []Code{Cipher0Enabled, AnonymousLogin, WeakAuth, DefaultPassword}

// Event codes, from the catalogue (internal/evcode).
const (
	EventCipher0Enabled  = evcode.AuditCipher0Enabled
	EventAnonymousLogin  = evcode.AuditAnonymousLogin
	EventWeakAuth        = evcode.AuditWeakAuth
	EventDefaultPassword = evcode.AuditDefaultPassword
	EventDrift           = evcode.AuditDrift
)

// EventCode is the event raised when code first appears on a BMC.
func (c Code) EventCode() string { return "audit." + string(c) }

// Severity of a code's finding and event: the catalogue's.
func (c Code) Severity() store.Severity {
	if k, ok := evcode.Lookup(c.EventCode()); ok {
		return store.Severity(k.Severity)
	}
	return store.SeverityCritical
}

// Subjects of findings: what exactly was found under a code.
const (
	SubjectAnonymousFlag = "anonymous_flag"  // auth caps: anonymous login enabled (null user, null password)
	SubjectNullUsersFlag = "null_users_flag" // auth caps: null user names enabled
	SubjectNullLogin     = "null_login"      // a session opened with an empty user name and password
	SubjectAuthNone      = "none"            // IPMI 1.5 authentication type none
	SubjectAuthStraight  = "straight_password"
	SubjectAuthMD2       = "md2"
)

// Finding is one insecure setting of a BMC.
type Finding struct {
	Code Code `json:"code"`
	// Subject says what exactly under the code: an authentication type,
	// which anonymous setting, the user name with a default password.
	Subject  string         `json:"subject,omitempty"`
	Severity store.Severity `json:"severity"`
	// Message says what was found, in the operator's words.
	Message string `json:"message"`
	// Remedy says how to fix it on the BMC.
	Remedy string `json:"remedy"`
	// Evidence says how it was found (never a password).
	Evidence string `json:"evidence,omitempty"`
}

// Key identifies a finding across audits: code and subject.
func (f Finding) Key() string {
	if f.Subject == "" {
		return string(f.Code)
	}
	return string(f.Code) + ":" + f.Subject
}

// Drift is what changed between two audits of one BMC.
type Drift struct {
	Added   []Finding `json:"added,omitempty"`
	Removed []Finding `json:"removed,omitempty"`
	// NewCodes are the codes present now and absent before: each raises
	// its own event ("audit." + code).
	NewCodes []Code `json:"new_codes,omitempty"`
}

// Empty reports whether nothing changed.
func (d Drift) Empty() bool { return len(d.Added) == 0 && len(d.Removed) == 0 }

// Diff compares the findings of two audits by Key (messages and evidence
// may change wording without being drift). It is pure; the result is
// sorted by key.
func Diff(prev, cur []Finding) Drift {
	before, after := map[string]Finding{}, map[string]Finding{}
	codesBefore := map[Code]bool{}
	for _, f := range prev {
		before[f.Key()] = f
		codesBefore[f.Code] = true
	}
	for _, f := range cur {
		after[f.Key()] = f
	}
	var d Drift
	newCodes := map[Code]bool{}
	for k, f := range after {
		if _, ok := before[k]; !ok {
			d.Added = append(d.Added, f)
			if !codesBefore[f.Code] {
				newCodes[f.Code] = true
			}
		}
	}
	for k, f := range before {
		if _, ok := after[k]; !ok {
			d.Removed = append(d.Removed, f)
		}
	}
	Sort(d.Added)
	Sort(d.Removed)
	for _, c := range Codes {
		if newCodes[c] {
			d.NewCodes = append(d.NewCodes, c)
		}
	}
	return d
}

// Sort orders findings by code (in Codes order) and subject.
func Sort(fs []Finding) {
	rank := func(c Code) int {
		for i, x := range Codes {
			if x == c {
				return i
			}
		}
		return len(Codes)
	}
	sort.SliceStable(fs, func(i, j int) bool {
		if ri, rj := rank(fs[i].Code), rank(fs[j].Code); ri != rj {
			return ri < rj
		}
		return fs[i].Key() < fs[j].Key()
	})
}

// Keys lists the findings' keys, in order.
func Keys(fs []Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Key()
	}
	return out
}

// Summary is the drift in one line: "added cipher0_enabled, weak_auth:none;
// removed default_password:root".
func (d Drift) Summary() string {
	var parts []string
	if len(d.Added) > 0 {
		parts = append(parts, "added "+strings.Join(Keys(d.Added), ", "))
	}
	if len(d.Removed) > 0 {
		parts = append(parts, "removed "+strings.Join(Keys(d.Removed), ", "))
	}
	if len(parts) == 0 {
		return "no change"
	}
	return strings.Join(parts, "; ")
}

// The findings, with the operator's wording.

func cipher0Finding(user string) Finding {
	return Finding{Code: Cipher0Enabled, Severity: Cipher0Enabled.Severity(),
		Message: "the BMC accepts RMCP+ cipher suite 0 (no authentication): anyone who can reach it logs in as any user whose name they know, with any password",
		Remedy: "disable cipher suite 0 on the BMC — ipmitool lan set 1 cipher_privs with X as the first character (suite 0), e.g. Xaaaaaaaaaaaaaa, " +
			"or in the vendor's IPMI over LAN settings; update firmware that cannot turn it off — then re-run the audit",
		Evidence: fmt.Sprintf("a session opened with cipher suite 0 as %q; no password was checked", user)}
}

func anonymousFinding(subject string) Finding {
	f := Finding{Code: AnonymousLogin, Subject: subject, Severity: AnonymousLogin.Severity(),
		Remedy: "disable the null user (user ID 1) on the LAN channel: ipmitool user disable 1; ipmitool channel setaccess 1 1 ipmi=off; " +
			"and give every enabled user a name and a password (vendor UIs: disable anonymous login)"}
	switch subject {
	case SubjectAnonymousFlag:
		f.Message = "the BMC reports anonymous login enabled: a user with an empty name and an empty password may log in"
		f.Evidence = "Get Channel Authentication Capabilities: anonymous login bit set"
	case SubjectNullUsersFlag:
		f.Message = "the BMC reports null user names enabled: a user with an empty name may log in (with its password)"
		f.Evidence = "Get Channel Authentication Capabilities: null user names bit set"
	case SubjectNullLogin:
		f.Message = "a session opened with an empty user name and an empty password"
		f.Evidence = "RMCP+ session with the null user and an empty password opened (then closed at once)"
	}
	return f
}

func weakAuthFinding(subject string) Finding {
	names := map[string]string{SubjectAuthNone: "none (no authentication)", SubjectAuthStraight: "straight password (the password in clear text on the wire)",
		SubjectAuthMD2: "MD2 (a broken hash)"}
	return Finding{Code: WeakAuth, Subject: subject, Severity: WeakAuth.Severity(),
		Message: "the BMC offers IPMI 1.5 authentication type " + names[subject],
		Remedy: "allow only MD5 for IPMI 1.5 at every privilege level — ipmitool lan set 1 auth ADMIN MD5 (and CALLBACK, USER, OPERATOR) — " +
			"or better, disable IPMI 1.5 and use RMCP+ (IPMI 2.0) only",
		Evidence: "Get Channel Authentication Capabilities: authentication type " + subject + " offered"}
}

func defaultPasswordFinding(c Credential, own bool) Finding {
	f := Finding{Code: DefaultPassword, Subject: c.User, Severity: DefaultPassword.Severity(),
		Message: fmt.Sprintf("user %q logs in with the %s factory default password", c.User, c.Vendor),
		Remedy: fmt.Sprintf("change the password of %q on the BMC (ipmitool user set password ID), or disable the account; "+
			"then update the inventory if lightsout uses it", c.User),
		Evidence: fmt.Sprintf("a session opened as %q with the documented %s default (%s), then closed at once", c.User, c.Vendor, c.Product)}
	if own {
		f.Evidence = fmt.Sprintf("the account lightsout monitors with is %q with the documented %s default password (%s); no extra login was needed", c.User, c.Vendor, c.Product)
	}
	return f
}
