package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/manager"
)

func newAdoptCmd() *cobra.Command {
	f := &apiFlags{}
	var g string
	c := &cobra.Command{
		Use:   "adopt NAME [--guid G]",
		Short: "Accept a machine's new System GUID after a motherboard swap (admin)",
		Long: `adopt re-pins a machine's expected System GUID. After a motherboard (or BMC)
replacement the BMC reports a new GUID and the channel turns Invalid; once you
have confirmed the hardware swap, adopt accepts the GUID the BMC reports now
(or --guid G, in any layout) and the server re-checks the machine at once.

Do not adopt blindly: Invalid also means another BMC answers at this address
(a reused or swapped IP). Needs the admin role; the change is audited.` + serverHelp,
		Example: `  lightsout adopt web-1
  lightsout adopt web-1 --guid 4c4c4544-0042-3510-8052-b4c04f4e3232`,
		Args: exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			if g != "" {
				if _, err := guid.Parse(g); err != nil {
					return usageErr("--guid: %v", err)
				}
			}
			return callAPI(cmd, f, func(cl *client.Client, ctx context.Context) (manager.MachineView, error) {
				return cl.Adopt(ctx, args[0], g)
			}, func(out io.Writer, m manager.MachineView) {
				fmt.Fprintf(out, "%s now expects System GUID %s\n", m.Name, m.GUID)
				for _, ch := range m.Channels {
					printChannel(out, ch)
				}
			})
		},
	}
	f.add(c.Flags(), true)
	c.Flags().StringVar(&g, "guid", "", "the GUID to expect, any layout (default: the one the BMC reports now)")
	return c
}

func newAcceptCertCmd() *cobra.Command {
	f := &apiFlags{}
	var fp string
	c := &cobra.Command{
		Use:   "accept-cert NAME [--fingerprint SHA256]",
		Short: "Accept a Redfish BMC's changed TLS certificate (admin)",
		Long: `accept-cert re-pins the TLS certificate of a machine's Redfish BMC. The
certificate is pinned on first contact; when the BMC later presents another
one the channel turns Invalid / cert_changed and no credentials are sent to
it. Once you have verified the new fingerprint out of band (the BMC's web UI
or console; lightsout machines show NAME prints the one presented), accept-cert
pins the certificate the BMC presented at its last check (or --fingerprint,
hex SHA-256, colons allowed, whatever the channel's state) and the server
re-checks the machine at once.

Do not accept blindly: a changed certificate also means something may
intercept the connection. Needs the admin role; the change is audited.` + serverHelp,
		Example: `  lightsout accept-cert web-1
  lightsout accept-cert web-1 --fingerprint 3f9a…(64 hex digits)`,
		Args: exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAPI(cmd, f, func(cl *client.Client, ctx context.Context) (manager.MachineView, error) {
				return cl.AcceptCertificate(ctx, args[0], fp)
			}, func(out io.Writer, m manager.MachineView) {
				fmt.Fprintf(out, "%s: certificate accepted\n", m.Name)
				for _, ch := range m.Channels {
					printChannel(out, ch)
				}
			})
		},
	}
	f.add(c.Flags(), true)
	c.Flags().StringVar(&fp, "fingerprint", "", "the certificate's SHA-256 to pin (default: the one the BMC presented at its last check)")
	return c
}

func newReplaceCmd() *cobra.Command {
	f := &apiFlags{}
	var spare string
	c := &cobra.Command{
		Use:   "replace OLD --by SPARE",
		Short: "Replace a machine by a spare: the spare takes its group, role and tags",
		Long: `replace is machine replacement: SPARE (a machine in the spare pool, see
lightsout machines set NAME --spare) takes OLD's group, role and tags and
leaves the pool; OLD keeps its accounts and history and leaves the group. The
spare's OOB channel must be Connectable, so the replacement can be operated at
once; otherwise the replacement is refused with the state and the remedy.
Needs the operator role.` + serverHelp,
		Example: `  lightsout replace web-3 --by spare-1`,
		Args:    exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			if spare == "" {
				return usageErr("--by is required: the spare machine that takes %s's place", args[0])
			}
			return callAPI(cmd, f, func(cl *client.Client, ctx context.Context) (wire.ReplaceResponse, error) {
				return cl.Replace(ctx, args[0], spare)
			}, func(out io.Writer, r wire.ReplaceResponse) {
				fmt.Fprintf(out, "%s replaced %s (group %q, role %q)\n", r.Spare.Name, r.Old.Name, r.Spare.Group, r.Spare.Role)
			})
		},
	}
	f.add(c.Flags(), true)
	c.Flags().StringVar(&spare, "by", "", "the spare machine taking the place (required)")
	return c
}

func newRegisterCmd() *cobra.Command {
	f := &apiFlags{}
	c := &cobra.Command{
		Use:   "register NAME",
		Short: "Re-register a machine: pin its System GUID again from its next Connectable check (admin)",
		Long: `register is master-machine registration: the machine's expected GUID is
cleared and the next Connectable check of its channel pins the GUID the BMC
reports. Use it when the identity on record is wrong and you trust whatever
answers at the address now. Needs the admin role; audited.` + serverHelp,
		Example: `  lightsout register web-1 && lightsout check web-1`,
		Args:    exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAPI(cmd, f, func(cl *client.Client, ctx context.Context) (manager.MachineView, error) {
				return cl.Register(ctx, args[0])
			}, func(out io.Writer, m manager.MachineView) {
				fmt.Fprintf(out, "%s awaits its first Connectable check to pin its System GUID (lightsout check %s)\n", m.Name, m.Name)
			})
		},
	}
	f.add(c.Flags(), true)
	return c
}
