package protocol

import "testing"

func TestPorts(t *testing.T) {
	for _, c := range []struct {
		p          Protocol
		port, want int
	}{
		{IPMI, 0, 623}, {Redfish, 0, 443}, {IPMI, 6230, 6230}, {Redfish, 8443, 8443}, {"snmp", 0, 0}, {"", 0, 0},
	} {
		if got := c.p.Port(c.port); got != c.want {
			t.Errorf("%q.Port(%d) = %d, want %d", c.p, c.port, got, c.want)
		}
	}
	if !IPMI.Known() || !Redfish.Known() || Protocol("").Known() || Protocol("IPMI").Known() {
		t.Error("Known")
	}
}
