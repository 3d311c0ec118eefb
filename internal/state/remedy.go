package state

import (
	"strconv"
	"strings"
)

// RemedyFor is Remedy with the commands it names filled in for machine
// and account (the account's ID in lightsout accounts set, the machine's
// name in adopt, accept-cert and check), where they are known (non-empty,
// non-zero).
func RemedyFor(s OOB, r Reason, machine string, account int64) string {
	rem := Remedy(s, r)
	if account > 0 {
		rem = strings.ReplaceAll(rem, "lightsout accounts set ID ", "lightsout accounts set "+strconv.FormatInt(account, 10)+" ")
	}
	if machine != "" {
		for _, cmd := range []string{"adopt", "accept-cert", "check"} {
			rem = strings.ReplaceAll(rem, "lightsout "+cmd+" NAME", "lightsout "+cmd+" "+machine)
		}
	}
	return rem
}

// Remedy is the first thing an operator should do about a channel in state s
// for reason r, in the operator's words. The diagnosis trees go further; this
// is what a refused operation says.
func Remedy(s OOB, r Reason) string {
	switch s {
	case Connectable:
		if r == ReasonBusy {
			return "the BMC has no free session slot: another tool or agent holds its sessions; close them or wait, then retry"
		}
		return ""
	case Unknown:
		return "the channel has not been checked yet: run a check (lightsout check NAME) and retry"
	case NotAuthenticated:
		switch r {
		case ReasonWrongPassword:
			return "the BMC refused the password: set the account's password to the one configured on the BMC (lightsout accounts set ID --password-file FILE); it is retried at once after the edit"
		case ReasonUnknownUser:
			return "the BMC does not know this user: re-create the BMC user (after a motherboard or BMC replacement it is gone) or fix the account's user name"
		case ReasonPrivilege:
			return "the user lacks the privilege asked for: raise the user's privilege on the BMC, or lower the account's privilege setting"
		case ReasonLocked:
			return "the BMC has disabled or locked this user (often after repeated failed logins): unlock or re-enable it on the BMC, or wait out its lockout interval; fix the password first if it was wrong"
		}
		return "the BMC refused the account: check the user name, password and privilege on the BMC and in the account; an account locked after repeated failures unlocks on the BMC"
	case Invalid:
		if r == ReasonCertChanged {
			return "the BMC presents another TLS certificate than the pinned one (BMC replaced or reset, certificate regenerated, or interception): verify it at the BMC, then have an admin accept the new certificate (lightsout accept-cert NAME); no credentials are sent meanwhile"
		}
		return "another BMC answers at this address (System GUID differs): look for swapped or reused IP addresses; if the motherboard was replaced, adopt the new GUID (lightsout adopt NAME, admin)"
	case NotResponding:
		switch r {
		case ReasonPortRefused:
			return "the host answered but UDP 623 is closed: enable IPMI over LAN on the BMC (or restart its IPMI service)"
		case ReasonUnreachable:
			return "no route to the BMC's address: check the address in the account and the management network's routing"
		case ReasonStalled, ReasonProtocol:
			return "the BMC answered, then stopped or sent unusable replies: reset the BMC (cold reset from the host or the enclosure manager) and retry"
		case ReasonIPMI15Only:
			return "the BMC speaks IPMI 1.5 only and lightsout needs IPMI 2.0 (RMCP+): enable IPMI 2.0 / RMCP+ sessions on the BMC or update its firmware, or monitor it over Redfish if it offers it"
		case ReasonTLS:
			return "the TLS handshake with the BMC's Redfish service failed: check its certificate and TLS settings (an expired or broken certificate, TLS below 1.2), or regenerate the certificate on the BMC"
		case ReasonNoCipherSuite, ReasonCipher0Refused:
			return "no acceptable cipher suite in common: enable cipher suite 17 or 3 on the BMC, or pin a suite it offers in the account"
		}
		return "nothing came back: check the BMC's address, its network cable and switch port, that UDP 623 is not filtered, and, for a blade, its enclosure manager"
	}
	return ""
}
