package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/lightsout/lightsout/internal/inventory"
)

// RunOptions is what `lightsout sim` does besides starting the fleet.
type RunOptions struct {
	// ExportInventory, when set, is where to write the fleet's inventory
	// (.yaml, .yml or .csv).
	ExportInventory string
	// ExportProtocol is the protocol of the exported accounts: "ipmi",
	// "redfish" (with Config.Redfish), or "" for the fleet's own (redfish
	// with Config.Redfish, else ipmi). See Fleet.InventoryAs.
	ExportProtocol string
	// ControlAddr is the control API's loopback host:port ("" = none).
	ControlAddr string
	// Ready, when set, is called once everything is up.
	Ready func(*Fleet, *ControlServer)
}

// DefaultPasswordFile is where a generated password goes when no inventory
// is exported.
const DefaultPasswordFile = "lightsout-sim.password"

// Run starts the fleet described by cfg, exports its inventory, starts the
// control API, prints one ready line to out, and serves until ctx ends.
//
// The password: Config.Password or Config.PasswordFile, else a random one.
// An exported inventory names a password file: Config.PasswordFile when
// given, else one written next to the inventory (NAME.password, mode
// 0600). A random password with no inventory is written to
// DefaultPasswordFile. The password itself is never printed.
//
// Input errors (bad config, bad export path) are *FieldError.
func Run(ctx context.Context, cfg Config, opts RunOptions, out io.Writer) error {
	if opts.ExportInventory != "" {
		if _, err := inventory.FormatFromPath(opts.ExportInventory); err != nil {
			return fieldErr("export-inventory", "%v", err)
		}
	}
	switch opts.ExportProtocol {
	case "", inventory.ProtocolIPMI:
	case inventory.ProtocolRedfish:
		if !cfg.Redfish {
			return fieldErr("export-protocol", "redfish accounts need a fleet that serves Redfish (redfish: true)")
		}
	default:
		return fieldErr("export-protocol", "%q: want ipmi or redfish", opts.ExportProtocol)
	}
	if opts.ControlAddr != "" {
		if err := checkControlAddr(opts.ControlAddr); err != nil {
			return err
		}
	}
	generated := cfg.Password == "" && cfg.PasswordFile == ""
	f, err := New(cfg)
	if err != nil {
		return err
	}
	defer f.Close()

	pwFile := cfg.PasswordFile
	switch {
	case pwFile == "" && opts.ExportInventory != "":
		inv := opts.ExportInventory
		pwFile = strings.TrimSuffix(inv, filepath.Ext(inv)) + ".password"
		if err := f.WritePasswordFile(pwFile); err != nil {
			return err
		}
	case generated:
		pwFile = DefaultPasswordFile
		if err := f.WritePasswordFile(pwFile); err != nil {
			return err
		}
	}
	if opts.ExportInventory != "" {
		if err := f.ExportInventoryAs(opts.ExportInventory, pwFile, opts.ExportProtocol); err != nil {
			return fmt.Errorf("export inventory: %w", err)
		}
	}

	var cs *ControlServer
	if opts.ControlAddr != "" {
		cs, err = f.ServeControl(opts.ControlAddr)
		if err != nil {
			return err
		}
		defer cs.Close()
	}

	fmt.Fprint(out, readyLine(f, cs, opts.ExportInventory, pwFile))
	if opts.Ready != nil {
		opts.Ready(f, cs)
	}
	<-ctx.Done()
	if cs != nil {
		_ = cs.Close()
	}
	if err := f.Close(); err != nil {
		return err
	}
	fmt.Fprintln(out, "lightsout sim: stopped")
	if errors.Is(ctx.Err(), context.Canceled) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil
	}
	return ctx.Err()
}

func readyLine(f *Fleet, cs *ControlServer, inv, pwFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "lightsout sim: %d BMCs ready", len(f.servers))
	if n := len(f.enclosures); n > 0 {
		fmt.Fprintf(&b, " (+%d enclosure managers)", n)
	}
	fmt.Fprintf(&b, " on %s", f.AddrRange())
	if cs != nil {
		fmt.Fprintf(&b, "; control API %s", cs.URL())
	}
	b.WriteString("\n")
	if inv != "" {
		fmt.Fprintf(&b, "lightsout sim: inventory %s\n", inv)
	}
	if pwFile != "" {
		fmt.Fprintf(&b, "lightsout sim: password in %s (user %s)\n", pwFile, AdminUser)
	}
	return b.String()
}
