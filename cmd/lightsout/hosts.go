package main

import (
	"errors"
	"net/netip"

	"github.com/lightsout/lightsout/internal/hostlist"
)

// namesHelp ends the help of every command that takes machine names.
const namesHelp = `

Machine names may be FreeIPMI host lists, as many as the command line holds:
'bmc-[001-100],spare-1' is bmc-001 … bmc-100 and spare-1 (a leading zero
fixes the width); a bad list is refused with its position, and one command
line expands to at most 100000 names.`

// MaxNames bounds what one command line's host lists expand to.
const MaxNames = 100000

// expandNames expands FreeIPMI-style host lists among args ("bmc-[001-100],
// spare-1"): each argument is a name or a list; the result keeps the order
// and names each machine once. A bad list is a usage error naming what
// and the position.
func expandNames(what string, args []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, a := range args {
		names := []string{a}
		if hostlist.Has(a) && !isAddrLiteral(a) {
			var err error
			if names, err = hostlist.Expand(a, MaxNames-len(out)); err != nil {
				var he *hostlist.Error
				if errors.As(err, &he) && errors.Is(err, hostlist.ErrTooMany) {
					return nil, usageErr("%s: %v (at most %d names on one command line)", what, err, MaxNames)
				}
				return nil, usageErr("%s: %v", what, err)
			}
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out, nil
}

// isAddrLiteral reports whether s is one address rather than a list: an
// IPv6 literal in brackets, with or without a port ("[fe80::1]:623").
func isAddrLiteral(s string) bool {
	if _, err := netip.ParseAddrPort(s); err == nil {
		return true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		_, err := netip.ParseAddr(s[1 : len(s)-1])
		return err == nil
	}
	return false
}
