package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/store"
)

func newEnclosuresCmd() *cobra.Command {
	f := &apiFlags{}
	c := &cobra.Command{
		Use:   "enclosures",
		Short: "Manage enclosures: blade chassis and their enclosure managers (EM card / CMC)",
		Long: `enclosures manages blade chassis. Blades reach their BMC through the
enclosure's manager, so a dead enclosure manager silences every blade in it;
machines name their enclosure and slot (lightsout machines add --enclosure E
--slot N). The enclosure manager's password is never a flag value.

Viewers may list and show, operators add, admins remove.` + serverHelp,
		Example: `  lightsout enclosures list
  lightsout enclosures add enc-1 --address 10.0.9.1 --user admin --password-file ~/.cmc-pass --slots 16
  lightsout enclosures rm enc-1`,
		Args: cobra.NoArgs,
	}
	f.add(c.PersistentFlags(), true)
	c.AddCommand(newEnclosuresListCmd(f), newEnclosuresShowCmd(f), newEnclosuresAddCmd(f), newEnclosuresRmCmd(f))
	return c
}

// printEnclosures prints enclosures as a table (-o wide: more columns).
func printEnclosures(out io.Writer, format string, es ...store.Enclosure) {
	tw := newTable(out, format, "NAME", "+PROTOCOL", "ADDRESS", "USER", "SLOTS", "KIND", "+CREATED", "UPDATED")
	for _, e := range es {
		kind := e.Kind
		if kind == "ipmb" {
			ipmb := e.IPMB
			if ipmb == "" {
				ipmb = "0x82+2"
			}
			kind += " " + ipmb
		}
		tw.row(e.Name, e.Protocol, hostPort(e.Address, e.Port), e.User, e.Slots, kind, stamp(e.CreatedAt), stamp(e.UpdatedAt))
	}
	tw.flush()
}

func newEnclosuresListCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List enclosures",
		Long:    `list prints every enclosure manager: name, address, user, number of slots and kind (ipmb with its slot-to-address rule, or oem).` + serverHelp,
		Example: `  lightsout enclosures list -o json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listAPI(cmd, f, (*client.Client).Enclosures, func(out io.Writer, es []store.Enclosure) {
				printEnclosures(out, f.output, es...)
			})
		},
	}
}

func newEnclosuresShowCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "show NAME",
		Short:   "Show one enclosure",
		Long:    `show prints one enclosure manager (never its password).` + serverHelp,
		Example: `  lightsout enclosures show enc-1`,
		Args:    exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAPI(cmd, f, func(cl *client.Client, ctx context.Context) (store.Enclosure, error) {
				return cl.Enclosure(ctx, args[0])
			}, func(out io.Writer, e store.Enclosure) {
				printEnclosures(out, f.output, e)
			})
		},
	}
}

func newEnclosuresAddCmd(f *apiFlags) *cobra.Command {
	var address, user, passwordFile, kind, ipmb string
	var port, slots int
	c := &cobra.Command{
		Use:   "add NAME --address ADDR --slots N [--user U --password-file F] [--port N] [--kind ipmb [--ipmb RULE]]",
		Short: "Register an enclosure manager",
		Long: `add registers a blade chassis' enclosure manager with its address, account and
number of slots (1-64). With --user, the password comes from --password-file,
LIGHTSOUT_PASSWORD or a prompt. --kind says how the diagnosis asks the
enclosure manager about a blade: ipmb (standard IPMI bridging to the blade's
controller on the manager's IPMB, as ATCA shelf managers and ipmi_sim answer;
--ipmb gives each slot's address: "0x82+2", the default, or "0x82,0x84,…")
or oem (lightsout's own enclosure commands, as lightsout sim speaks; the
default). Needs the operator role.` + serverHelp,
		Example: `  lightsout enclosures add enc-1 --address 10.0.9.1 --slots 16 --user admin --password-file ~/.cmc-pass
  lightsout enclosures add shelf-1 --address 10.0.9.2 --slots 14 --user admin --kind ipmb --ipmb 0x82+2`,
		Args: exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			if address == "" {
				return usageErr("--address is required: the enclosure manager's address")
			}
			if !cmd.Flags().Changed("slots") {
				return usageErr("--slots is required: how many blade slots the enclosure has (1-64)")
			}
			if err := checkPortSlot(cmd, port, 0, ""); err != nil {
				return err
			}
			in := manager.EnclosureInput{Name: args[0], Address: address, Port: port, Slots: slots}
			if kind != "" {
				in.Kind = &kind
			}
			if ipmb != "" {
				in.IPMB = &ipmb
			}
			if user != "" {
				pw, err := readPassword(passwordFile)
				if err != nil {
					return err
				}
				in.User, in.Password = &user, &pw
			} else if passwordFile != "" {
				return usageErr("--password-file goes with --user")
			}
			return callAPI(cmd, f, func(cl *client.Client, ctx context.Context) (store.Enclosure, error) {
				return cl.AddEnclosure(ctx, in)
			}, func(out io.Writer, e store.Enclosure) {
				fmt.Fprintf(out, "added enclosure %s (%d slots)\n", e.Name, e.Slots)
			})
		},
	}
	fl := c.Flags()
	fl.StringVar(&address, "address", "", "enclosure manager address (required)")
	fl.IntVar(&port, "port", 0, "enclosure manager port (default 623)")
	fl.StringVar(&user, "user", "", "enclosure manager user")
	fl.StringVar(&passwordFile, "password-file", "", "file holding the enclosure manager's password")
	fl.IntVar(&slots, "slots", 0, "number of blade slots, 1-64 (required)")
	fl.StringVar(&kind, "kind", "", "how blades are asked about: ipmb (standard IPMI bridging), redfish (a Redfish enclosure manager's Chassis; protocol redfish) or oem (default)")
	fl.StringVar(&ipmb, "ipmb", "", `kind ipmb: each slot's IPMB address, "0x82+2" (default) or "0x82,0x84,…"`)
	return c
}

func newEnclosuresRmCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "rm NAME",
		Short:   "Remove an enclosure (admin)",
		Long:    `rm deletes an enclosure manager. Needs the admin role.` + serverHelp,
		Example: `  lightsout enclosures rm enc-1`,
		Args:    exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			if err := cl.DeleteEnclosure(cmd.Context(), args[0]); err != nil {
				return apiErr(err)
			}
			if !f.structured() {
				fmt.Fprintf(cmd.OutOrStdout(), "removed enclosure %s\n", args[0])
			}
			return nil
		},
	}
}
