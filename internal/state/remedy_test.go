package state

import (
	"strings"
	"testing"
)

// Remedies name the real account and machine where they are known, and
// keep the placeholder where they are not.
func TestRemedyForFillsCommands(t *testing.T) {
	if r := RemedyFor(NotAuthenticated, ReasonWrongPassword, "web-1", 42); !strings.Contains(r, "lightsout accounts set 42 --password-file FILE") {
		t.Errorf("wrong password: %s", r)
	}
	if r := RemedyFor(Invalid, ReasonGUIDMismatch, "web-1", 42); !strings.Contains(r, "lightsout adopt web-1") {
		t.Errorf("guid mismatch: %s", r)
	}
	if r := RemedyFor(Invalid, ReasonCertChanged, "web-1", 0); !strings.Contains(r, "lightsout accept-cert web-1") {
		t.Errorf("cert changed: %s", r)
	}
	if r := RemedyFor(Unknown, "", "web-1", 7); !strings.Contains(r, "lightsout check web-1") {
		t.Errorf("unknown: %s", r)
	}
	if r := RemedyFor(NotAuthenticated, ReasonWrongPassword, "", 0); r != Remedy(NotAuthenticated, ReasonWrongPassword) {
		t.Errorf("nothing known: %s", r)
	}
}
