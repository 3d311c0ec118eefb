package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/guid"
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
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			m, err := cl.Adopt(cmd.Context(), args[0], g)
			if err != nil {
				return apiErr(err)
			}
			if f.structured() {
				return emit(f.output, cmd.OutOrStdout(), m)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s now expects System GUID %s\n", m.Name, m.GUID)
			for _, ch := range m.Channels {
				printChannel(cmd.OutOrStdout(), ch)
			}
			return nil
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
			if err := f.checkOutput(); err != nil {
				return err
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			m, err := cl.AcceptCertificate(cmd.Context(), args[0], fp)
			if err != nil {
				return apiErr(err)
			}
			if f.structured() {
				return emit(f.output, cmd.OutOrStdout(), m)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: certificate accepted\n", m.Name)
			for _, ch := range m.Channels {
				printChannel(cmd.OutOrStdout(), ch)
			}
			return nil
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
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			r, err := cl.Replace(cmd.Context(), args[0], spare)
			if err != nil {
				return apiErr(err)
			}
			if f.structured() {
				return emit(f.output, cmd.OutOrStdout(), r)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s replaced %s (group %q, role %q)\n", r.Spare.Name, r.Old.Name, r.Spare.Group, r.Spare.Role)
			return nil
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
			if err := f.checkOutput(); err != nil {
				return err
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			m, err := cl.Register(cmd.Context(), args[0])
			if err != nil {
				return apiErr(err)
			}
			if f.structured() {
				return emit(f.output, cmd.OutOrStdout(), m)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s awaits its first Connectable check to pin its System GUID (lightsout check %s)\n", m.Name, m.Name)
			return nil
		},
	}
	f.add(c.Flags(), true)
	return c
}
