package probe

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Resolve parses host[:port] (IPv6 in brackets when a port is given) and
// resolves a hostname, bounded by a few seconds.
func Resolve(ctx context.Context, hostport string, defPort int) (netip.AddrPort, error) {
	host, port := hostport, defPort
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		n, perr := strconv.Atoi(p)
		if perr != nil || n < 1 || n > 65535 {
			return netip.AddrPort{}, fmt.Errorf("%q: port %q is not 1-65535", hostport, p)
		}
		host, port = h, n
	}
	if host == "" {
		return netip.AddrPort{}, fmt.Errorf("%q: empty address", hostport)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return netip.AddrPort{}, fmt.Errorf("%q: zoned IPv6 addresses are not supported", hostport)
		}
		return netip.AddrPortFrom(a.Unmap(), uint16(port)), nil
	}
	if strings.ContainsAny(host, ":/ ") || strings.Count(hostport, ":") > 1 {
		return netip.AddrPort{}, fmt.Errorf("%q is not an address (IPv6 with a port needs brackets: [::1]:623)", hostport)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(rctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return netip.AddrPort{}, fmt.Errorf("%q does not resolve: %v", host, err)
	}
	return netip.AddrPortFrom(addrs[0].Unmap(), uint16(port)), nil
}
