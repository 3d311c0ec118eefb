package probe

import (
	"slices"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/protocol"
	"github.com/lightsout/lightsout/internal/redfish"
)

func TestNewTarget(t *testing.T) {
	a := protocol.Account{Protocol: "ipmi", Address: "10.0.0.1", Port: 623, User: "admin", Password: []byte("pw"),
		Privilege: "operator", CipherSuite: 3, CipherSuites: []int{17, 3}, RedfishAuth: "Basic"}
	tg := NewTarget("web-1", a, 2*time.Second)
	if tg.Name != "web-1" || tg.Protocol != "ipmi" || tg.User != "admin" || string(tg.Password) != "pw" || tg.CipherSuite != 3 ||
		tg.Privilege != ipmi.PrivilegeOperator || tg.Timeout != 2*time.Second || tg.RedfishAuth != redfish.AuthBasic ||
		!slices.Equal(tg.Suites, []ipmi.CipherSuite{17, 3}) || tg.Addr.IsValid() {
		t.Fatalf("target %+v", tg)
	}
	tg = NewTarget("web-2", protocol.Account{Protocol: "redfish"}, 0)
	if tg.Suites != nil || tg.Privilege != ipmi.PrivilegeAdministrator || tg.RedfishAuth != redfish.AuthAuto {
		t.Fatalf("defaults: %+v", tg)
	}
}
