package ipmi

import (
	"context"
	"testing"
	"time"
)

// TestSessionsOpenIPMISim: the session census (Get Session Info over the
// whole table, Get User Name) against OpenIPMI's ipmi_sim: two consoles'
// sessions, each with its user, privilege and channel.
func TestSessionsOpenIPMISim(t *testing.T) {
	sim, _ := startEnclosureSim(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var sess []*Session
	for i := 0; i < 2; i++ {
		eng, err := New(Config{Sockets: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer eng.Close()
		s, err := eng.Open(ctx, sim.Addr, Credentials{User: "admin", Password: []byte("em-pass-1"), Privilege: PrivilegeAdministrator})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(ctx)
		sess = append(sess, s)
	}
	self, all, err := sess[1].Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("self %+v; all %+v", self, all)
	// ipmi_sim answers Get Session Info without the LAN channel's
	// console address (6 bytes): the census must not invent one. Its
	// sessions start at User privilege, as RMCP+ prescribes, until Set
	// Session Privilege Level raises them.
	if len(all) != 2 || self.Active != 2 || self.Slots != 63 || self.Remote.IsValid() || self.Handle == 0 {
		t.Fatalf("self %+v, table %+v", self, all)
	}
	for _, si := range all {
		if si.UserID != 2 || si.Privilege != PrivilegeUser || !si.IPMI20 || si.Channel != 1 || si.Remote.IsValid() {
			t.Errorf("session %+v", si)
		}
	}
	if err := sess[1].SetPrivilege(ctx, PrivilegeAdministrator); err != nil {
		t.Fatal(err)
	}
	if self, _, err := sess[1].Sessions(ctx); err != nil || self.Privilege != PrivilegeAdministrator {
		t.Errorf("after Set Session Privilege Level: %+v %v", self, err)
	}
	if n, err := sess[1].UserName(ctx, 2); err != nil || n != "admin" {
		t.Errorf("user name %q %v", n, err)
	}
}
