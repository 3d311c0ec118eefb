package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lightsout/lightsout/internal/inventory"
)

// Inventory describes the fleet as an inventory. Its machines are the
// server BMCs (blades included): each one's registered address and port,
// its registered GUID (SMBIOS rendering), the admin account, passwordFile
// as where its password is, and a blade's enclosure and slot. Its
// enclosures are the enclosure managers: name, registered address and
// port, the admin account, passwordFile, and as many slots as the
// enclosure has blades. An enclosure of more than inventory.MaxSlots
// blades is left out of Enclosures (its blades still name it). It writes
// nothing; see [Fleet.WritePasswordFile] and [Fleet.ExportInventory].
func (f *Fleet) Inventory(passwordFile string) *inventory.Inventory {
	return f.InventoryAs(passwordFile, "")
}

// InventoryAs is Inventory with the machines' accounts of protocol:
// inventory.ProtocolIPMI (every BMC answers IPMI), ProtocolRedfish (a
// fleet serving Redfish), or "" for the fleet's own (Redfish when it
// serves it). An inventory names one account per machine: export one
// of each to check a Redfish fleet both ways.
func (f *Fleet) InventoryAs(passwordFile, protocol string) *inventory.Inventory {
	inv := &inventory.Inventory{Machines: make([]inventory.Machine, 0, len(f.servers))}
	for _, e := range f.enclosures {
		if len(e.blades) > inventory.MaxSlots {
			continue
		}
		inv.Enclosures = append(inv.Enclosures, inventory.Enclosure{
			Name:         e.name,
			Address:      e.em.home.Addr().String(),
			Port:         int(e.em.home.Port()),
			User:         AdminUser,
			Protocol:     inventory.ProtocolIPMI,
			PasswordFile: passwordFile,
			Slots:        len(e.blades),
		})
	}
	for _, b := range f.servers {
		// With Redfish, the machines' accounts are Redfish ones.
		port, proto := int(b.home.Port()), inventory.ProtocolIPMI
		if b.rf != nil && protocol != inventory.ProtocolIPMI {
			port, proto = int(b.rf.home.Port()), inventory.ProtocolRedfish
		}
		inv.Machines = append(inv.Machines, inventory.Machine{
			Name:         b.name,
			GUID:         b.origGUID.String(),
			Address:      b.home.Addr().String(),
			Port:         port,
			User:         AdminUser,
			Protocol:     proto,
			PasswordFile: passwordFile,
			Enclosure:    b.Enclosure(),
			Slot:         b.slot,
		})
	}
	return inv
}

// WritePasswordFile writes the fleet password to path (mode 0600, one
// line), replacing the file atomically.
func (f *Fleet) WritePasswordFile(path string) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("password file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("password file: %w", err)
	}
	if _, err := tmp.WriteString(f.password + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("password file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("password file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("password file: %w", err)
	}
	return nil
}

// ExportInventory writes the fleet's inventory to path (YAML for .yaml or
// .yml, CSV for .csv; CSV carries the machines only, not the enclosure
// managers). passwordFile is where the password is (written by
// the caller, e.g. with WritePasswordFile); the inventory names it
// relative to the inventory's directory when it lies beneath it, else by
// absolute path.
func (f *Fleet) ExportInventory(path, passwordFile string) error {
	return f.ExportInventoryAs(path, passwordFile, "")
}

// ExportInventoryAs is ExportInventory with the accounts of protocol (see
// InventoryAs).
func (f *Fleet) ExportInventoryAs(path, passwordFile, protocol string) error {
	if _, err := inventory.FormatFromPath(path); err != nil {
		return err
	}
	ref := passwordFile
	if ref != "" {
		ref = relativeTo(filepath.Dir(path), passwordFile)
	}
	return inventory.Save(path, f.InventoryAs(ref, protocol))
}

// relativeTo names target from dir: relative when target is inside dir,
// otherwise absolute.
func relativeTo(dir, target string) string {
	absDir, err1 := filepath.Abs(dir)
	absTarget, err2 := filepath.Abs(target)
	if err1 != nil || err2 != nil {
		return target
	}
	rel, err := filepath.Rel(absDir, absTarget)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return absTarget
	}
	return rel
}
