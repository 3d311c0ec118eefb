package sim

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lightsout/lightsout/internal/inventory"
)

// Inventory describes the fleet's server BMCs (blades included; enclosure
// managers are not machines) as an inventory: each machine's registered
// address and port, its registered GUID (SMBIOS rendering), the admin
// account, and passwordFile as where its password is. It writes nothing;
// see [Fleet.WritePasswordFile] and [Fleet.ExportInventory].
func (f *Fleet) Inventory(passwordFile string) *inventory.Inventory {
	inv := &inventory.Inventory{Machines: make([]inventory.Machine, 0, len(f.servers))}
	for _, b := range f.servers {
		inv.Machines = append(inv.Machines, inventory.Machine{
			Name:         b.name,
			GUID:         b.origGUID.String(),
			Address:      b.home.Addr().String(),
			Port:         int(b.home.Port()),
			User:         AdminUser,
			Protocol:     inventory.ProtocolIPMI,
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
// .yml, CSV for .csv). passwordFile is where the password is (written by
// the caller, e.g. with WritePasswordFile); the inventory names it
// relative to the inventory's directory when it lies beneath it, else by
// absolute path.
func (f *Fleet) ExportInventory(path, passwordFile string) error {
	if _, err := inventory.FormatFromPath(path); err != nil {
		return err
	}
	ref := passwordFile
	if ref != "" {
		ref = relativeTo(filepath.Dir(path), passwordFile)
	}
	return inventory.Save(path, f.Inventory(ref))
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
