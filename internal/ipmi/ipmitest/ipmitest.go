// Package ipmitest starts go-ipmi's reference BMC server on a loopback
// port for tests: one admin user, a System GUID handler, optional session
// limit. It is a plain, well-behaved BMC; the fault-injecting fleet is
// internal/sim.
package ipmitest

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/bougou/go-ipmi/pkg/bmc"
	"github.com/bougou/go-ipmi/pkg/clock"
	"github.com/bougou/go-ipmi/pkg/hal/mock"
	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/server"
	"github.com/bougou/go-ipmi/pkg/transport/udp"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Defaults of a started BMC.
const (
	User     = "admin"
	Password = "s3cret-pass"
)

// GUID is the raw System GUID every test BMC reports unless told otherwise.
var GUID = [16]byte{0xa1, 0xa2, 0xa3, 0xa4, 0xb1, 0xb2, 0xc1, 0xc2, 0xd1, 0xd2, 1, 2, 3, 4, 5, 6}

// BMC is a running test BMC.
type BMC struct {
	*bmc.BMC
	Addr netip.AddrPort
	Stop func()
}

// Options tune a test BMC.
type Options struct {
	GUID        [16]byte
	MaxSessions int // 0: the server's default (4)
	Suites      []types.CipherSuiteID
}

// Start runs a BMC until the test ends.
func Start(t testing.TB, o Options) *BMC {
	t.Helper()
	if o.GUID == ([16]byte{}) {
		o.GUID = GUID
	}
	if len(o.Suites) == 0 {
		for _, id := range []types.CipherSuiteID{1, 2, 3, 15, 16, 17} {
			if bmc.SupportedCipherSuite(id) {
				o.Suites = append(o.Suites, id)
			}
		}
	}
	b := bmc.New(bmc.DeviceInfo{IPMIVersion: 0x02, ManufacturerID: 343, ProductID: 0x1234, FirmwareMajor: 2, FirmwareMinor: 0x45},
		o.GUID, mock.New(), bmc.WithClock(clock.Real))
	if o.MaxSessions > 0 {
		b.Sessions = bmc.NewSessionStoreWithOptions(b.Clock(), bmc.WithMaxSessions(o.MaxSessions))
		b.Sessions.SetOnRemove(b.SOL.DeactivateBySession)
	}
	u, err := b.Users.Add(2, User)
	if err != nil {
		t.Fatal(err)
	}
	u.SetPassword([]byte(Password))
	u.Enabled = true
	u.ChannelAccess[1] = bmc.UserChannelAccess{MaxPrivilege: bmc.PrivilegeLevelAdministrator, Enabled: true}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	srv := server.NewServer(b, udp.Wrap(conn, udp.WithReadTimeout(200*time.Millisecond)),
		server.WithHandlerRegistry(Registry()), server.WithCipherSuites(o.Suites))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx) }()
	stopped := false
	tb := &BMC{BMC: b, Addr: conn.LocalAddr().(*net.UDPAddr).AddrPort()}
	tb.Stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		srv.Close()
		<-done
	}
	t.Cleanup(tb.Stop)
	return tb
}

// Registry is go-ipmi's default registry plus Get System GUID.
func Registry() *handlers.Registry {
	r := handlers.NewRegistry()
	handlers.RegisterAllHandlers(r)
	r.RegisterFunc(types.Command{ID: 0x37, NetFn: 0x06, Name: "Get System GUID"},
		func(_ context.Context, h *handlers.HandlerContext, _ []byte) ([]byte, types.CompletionCode, error) {
			g := h.BMC.GUID
			return g[:], types.CodeOK, nil
		})
	return r
}
