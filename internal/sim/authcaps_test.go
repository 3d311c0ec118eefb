package sim

import (
	"bytes"
	"context"
	"testing"

	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// TestAuthCapsSameAsGoIPMI: the simulator's own Get Channel Authentication
// Capabilities answers with the bytes go-ipmi's handler gives, for every
// fault that changes users, keys or authentication types, on every
// channel a request can name.
func TestAuthCapsSameAsGoIPMI(t *testing.T) {
	stock := handlers.NewRegistry()
	handlers.RegisterAllHandlers(stock)
	f := newTestFleet(t, Config{Count: 1}, false)
	b := f.BMCs()[0]
	cases := map[string]Faults{
		"sound":            {},
		"anonymous":        {Anonymous: true},
		"default password": {DefaultPassword: true},
		"weak auth":        {WeakAuth: true},
		"insecure":         {Insecure: true},
		"user removed":     {UserRemoved: true},
		"locked":           {Locked: true},
		"bmc key":          {BMCKey: true},
		"all of them":      {Anonymous: true, DefaultPassword: true, WeakAuth: true, Locked: true, BMCKey: true},
	}
	for name, fl := range cases {
		if err := b.SetFaults(fl); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m := b.cur.Load().bmc
		for _, req := range [][]byte{{0x0e, 0x04}, {0x8e, 0x04}, {0x01, 0x02}, {0x02, 0x04}, {0x0f, 0x04}, {0x0e}} {
			want, wantCC, wantErr := stock.Dispatch(context.Background(), &handlers.HandlerContext{BMC: m},
				uint8(types.NetFnAppRequest), types.CommandGetChannelAuthCapabilities.ID, req)
			got, gotCC, gotErr := f.reg.Dispatch(context.Background(), &handlers.HandlerContext{BMC: m},
				uint8(types.NetFnAppRequest), types.CommandGetChannelAuthCapabilities.ID, req)
			if !bytes.Equal(got, want) || gotCC != wantCC || (gotErr == nil) != (wantErr == nil) {
				t.Errorf("%s, request % x: got % x cc %#x err %v; go-ipmi % x cc %#x err %v", name, req, got, gotCC, gotErr, want, wantCC, wantErr)
			}
		}
	}
	// The case that matters: the anonymous fault shows in the bits.
	if err := b.SetFaults(Faults{Anonymous: true}); err != nil {
		t.Fatal(err)
	}
	got, _, _ := f.reg.Dispatch(context.Background(), &handlers.HandlerContext{BMC: b.cur.Load().bmc},
		uint8(types.NetFnAppRequest), types.CommandGetChannelAuthCapabilities.ID, []byte{0x0e, 0x04})
	if len(got) < 3 || got[2]&0x03 != 0x03 {
		t.Errorf("anonymous fault: byte 3 %#x lacks the null-user and anonymous bits", got)
	}
}
