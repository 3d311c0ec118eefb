package ipmi

import (
	"errors"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"
)

// sock is one UDP socket of the engine, with the kernel's ICMP error queue
// enabled so that "port unreachable" is told apart from silence.
type sock struct {
	c     *net.UDPConn
	raw   syscall.RawConn
	v6    bool
	batch interface {
		ReadBatch([]ipv4.Message, int) (int, error)
	}
}

func openSock(local netip.AddrPort, buffer int) (*sock, error) {
	network := "udp4"
	if local.Addr().Is6() {
		network = "udp6"
	}
	c, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(local))
	if err != nil {
		return nil, err
	}
	raw, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	s := &sock{c: c, raw: raw, v6: network == "udp6"}
	if s.v6 {
		s.batch = ipv6.NewPacketConn(c)
	} else {
		s.batch = ipv4.NewPacketConn(c)
	}
	_ = raw.Control(func(fd uintptr) {
		// Prefer the forced variants (root); fall back to the capped ones.
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, buffer) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, buffer)
		}
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, buffer) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, buffer)
		}
		if s.v6 {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVERR, 1)
		} else {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1)
		}
	})
	return s, nil
}

type icmpErr struct {
	dst netip.AddrPort
	err error
}

// drainErrors reads the socket's error queue: each entry names the
// destination a datagram could not reach and why.
func (s *sock) drainErrors() []icmpErr {
	var out []icmpErr
	buf := make([]byte, 512)
	oob := make([]byte, 512)
	_ = s.raw.Control(func(fd uintptr) {
		for i := 0; i < 256; i++ {
			_, oobn, _, from, err := unix.Recvmsg(int(fd), buf, oob, unix.MSG_ERRQUEUE|unix.MSG_DONTWAIT)
			if err != nil {
				return
			}
			dst, ok := sockaddrAddrPort(from)
			if !ok {
				continue
			}
			out = append(out, icmpErr{dst: dst, err: errnoErr(extendedErrno(oob[:oobn]))})
		}
	})
	return out
}

func sockaddrAddrPort(sa unix.Sockaddr) (netip.AddrPort, bool) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)), true
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), uint16(a.Port)), true
	}
	return netip.AddrPort{}, false
}

// extendedErrno reads ee_errno from the IP(V6)_RECVERR control message.
func extendedErrno(oob []byte) syscall.Errno {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0
	}
	for _, m := range msgs {
		if (m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_RECVERR) ||
			(m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_RECVERR) {
			if len(m.Data) >= 4 {
				return syscall.Errno(uint32(m.Data[0]) | uint32(m.Data[1])<<8 | uint32(m.Data[2])<<16 | uint32(m.Data[3])<<24)
			}
		}
	}
	return 0
}

func errnoErr(e syscall.Errno) error {
	switch e {
	case unix.ECONNREFUSED:
		return ErrPortUnreachable
	case unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EHOSTDOWN, unix.ENETDOWN:
		return ErrHostUnreachable
	}
	return ErrHostUnreachable
}

// isSocketError reports whether a send failed with an errno that an ICMP
// error queued on the socket produces (not a local failure).
func isSocketError(err error) bool {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case unix.ECONNREFUSED, unix.EHOSTUNREACH, unix.ENETUNREACH, unix.EHOSTDOWN, unix.ENETDOWN:
			return true
		}
	}
	return false
}
