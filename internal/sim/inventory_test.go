package sim

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lightsout/lightsout/internal/inventory"
)

// TestInventoryEnclosures: the exported inventory lists the enclosure
// managers (address, account, password file, one slot per blade) beside
// the machines, and YAML keeps them while CSV carries machines only.
func TestInventoryEnclosures(t *testing.T) {
	f := newTestFleet(t, Config{Count: 6, Seed: 5, Enclosures: []EnclosureConfig{
		{Name: "enc-a", Blades: 3}, {Name: "enc-b", Blades: 1, Down: true},
	}}, false)
	inv := f.Inventory("fleet.password")
	if err := inv.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(inv.Enclosures) != 2 {
		t.Fatalf("%d enclosures, want 2", len(inv.Enclosures))
	}
	for i, e := range f.Enclosures() {
		got := inv.Enclosures[i]
		em := e.Manager()
		want := inventory.Enclosure{
			Name: e.Name(), Address: em.HomeAddr().Addr().String(), Port: int(em.HomeAddr().Port()),
			User: AdminUser, Protocol: inventory.ProtocolIPMI, PasswordFile: "fleet.password", Slots: len(e.Blades()),
		}
		if got != want {
			t.Errorf("enclosure %d = %+v\nwant %+v", i, got, want)
		}
		if got.HostPort() != em.HomeAddr().String() {
			t.Errorf("%s: HostPort %s, manager at %s", got.Name, got.HostPort(), em.HomeAddr())
		}
	}
	if len(inv.Machines) != 6 {
		t.Fatalf("%d machines, want 6 (enclosure managers are not machines)", len(inv.Machines))
	}
	for i, b := range f.BMCs() {
		if m := inv.Machines[i]; m.Name != b.Name() || m.Enclosure != b.Enclosure() || m.Slot != b.Slot() {
			t.Errorf("machine %d = %+v, BMC %s in %q slot %d", i, m, b.Name(), b.Enclosure(), b.Slot())
		}
	}

	dir := t.TempDir()
	pwFile := filepath.Join(dir, "fleet.password")
	if err := f.WritePasswordFile(pwFile); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"fleet.yaml", "fleet.csv"} {
		path := filepath.Join(dir, name)
		if err := f.ExportInventory(path, pwFile); err != nil {
			t.Fatal(err)
		}
		loaded, err := inventory.Load(path)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "fleet.csv" {
			if len(loaded.Enclosures) != 0 {
				t.Errorf("%s: %d enclosures; CSV carries machines only", name, len(loaded.Enclosures))
			}
			continue
		}
		for i := range loaded.Enclosures {
			loaded.Enclosures[i].Line = 0
		}
		if !reflect.DeepEqual(loaded.Enclosures, inv.Enclosures) {
			t.Errorf("%s: enclosures\n%+v\nwant\n%+v", name, loaded.Enclosures, inv.Enclosures)
		}
		pw, err := loaded.Enclosures[0].Password(loaded.Dir)
		if err != nil || string(pw) != f.Password() {
			t.Errorf("%s: enclosure password from file: %v", name, err)
		}
	}
}

// TestInventoryLargeEnclosure: an enclosure with more blades than an
// inventory enclosure may have slots is left out of Enclosures; its blades
// still name it, and the inventory stays valid.
func TestInventoryLargeEnclosure(t *testing.T) {
	big := inventory.MaxSlots + 1
	f := newTestFleet(t, Config{Count: big + 2, Seed: 9, Enclosures: []EnclosureConfig{
		{Name: "enc-big", Blades: big}, {Name: "enc-small", Blades: 2},
	}}, false)
	inv := f.Inventory("")
	if err := inv.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(inv.Enclosures) != 1 || inv.Enclosures[0].Name != "enc-small" || inv.Enclosures[0].Slots != 2 {
		t.Errorf("enclosures = %+v, want enc-small only", inv.Enclosures)
	}
	if m := inv.Machines[big-1]; m.Enclosure != "enc-big" || m.Slot != big {
		t.Errorf("last blade of enc-big: %+v", m)
	}
}
