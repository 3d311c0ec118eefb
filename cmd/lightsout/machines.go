package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/checkrun"
	"github.com/lightsout/lightsout/internal/inventory"
	"github.com/lightsout/lightsout/internal/manager"
)

func newMachinesCmd() *cobra.Command {
	f := &apiFlags{}
	c := &cobra.Command{
		Use:   "machines",
		Short: "List, show, add, edit and remove managed machines (through the server)",
		Long: `machines manages the server's inventory one machine at a time. A machine has a
name, an expected System GUID (pinned from its first Connectable check when not
given), a group, tags, a role, an enclosure slot for blades, and OOB accounts
(how the server reaches its BMC; see lightsout accounts). list and show print
each channel's state; when a channel is not Connectable, show says what to do.

Viewers may list and show, operators add and edit, admins remove.` + serverHelp,
		Example: `  lightsout machines list --group web
  lightsout machines show web-1 -o json
  lightsout machines add web-1 --address 10.0.4.17 --user admin --password-file ~/.bmc-pass --group web
  lightsout machines set web-1 --group db --tag rack-7
  lightsout machines rm web-1`,
		Args: cobra.NoArgs,
	}
	f.add(c.PersistentFlags(), true)
	c.AddCommand(newMachinesListCmd(f), newMachinesShowCmd(f), newMachinesAddCmd(f), newMachinesSetCmd(f), newMachinesRmCmd(f))
	return c
}

func newMachinesListCmd(f *apiFlags) *cobra.Command {
	var q client.MachineQuery
	c := &cobra.Command{
		Use:   "list [--group G] [--tag T] [--state S] [--reason R] [--condition C] [--enclosure E] [--zone Z]",
		Short: "List machines with the state of their OOB channels",
		Long: `list prints every machine (or those in --group / with --tag) with its OOB
address, the channel's state (with its conditions: +Busy, +Degraded,
+Insecure) and reason, the power state and since when the state holds.
Degraded: the BMC answers only after retries, or the path lost 10% or more
of the datagrams of its last checks (the rate is in the message, -o wide).
-o wide adds the role, zone, enclosure slot, protocol, user, last check and the
check's message; -o json prints one machine per line, channels included
(-o yaml: one document per machine); --out FILE writes it to a file.

--state, --reason and --condition keep the machines with a channel in that
state, declared for that reason, in that condition (one channel matching all
that are given); --enclosure keeps one enclosure's blades; --zone one zone's
machines ("default": those naming none; docs/scale-out.md). Names: states
Connectable, NotResponding, NotAuthenticated, Invalid, Unknown; conditions
Busy, Degraded, Insecure; reasons as the REASON column shows them
(wrong_password, silent, guid_mismatch, ...).` + serverHelp,
		Example: `  lightsout machines list
  lightsout machines list --state NotAuthenticated --reason wrong_password
  lightsout machines list --condition Degraded --group web
  lightsout machines list --enclosure enc-b --state NotResponding -o json | jq -r .name
  lightsout machines list --zone dc2 --state NotResponding`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			var tw *tabWriter
			if !f.structured() {
				tw = newTable(out, f.output, "NAME", "GROUP", "+ROLE", "+ZONE", "+ENCLOSURE", "+PROTOCOL", "ADDRESS", "+USER", "STATE", "REASON", "POWER", "SINCE", "+CHECKED", "+MESSAGE")
			}
			n := 0
			err = cl.AllMachines(cmd.Context(), q, func(m manager.MachineView) error {
				n++
				if f.structured() {
					return emit(f.output, out, m)
				}
				addr, st, reason, pw, since := "", "Unknown", "", "", ""
				var proto, user, checked, msg, encl string
				if m.Enclosure != "" {
					encl = fmt.Sprintf("%s/%d", m.Enclosure, m.Slot)
				}
				if len(m.Channels) > 0 {
					ch := m.Channels[0]
					addr = hostPort(ch.Account.Address, ch.Account.Port)
					st, reason, pw, since = stateText(ch), string(ch.State.Reason), ch.State.Power, stamp(ch.State.Since)
					proto, user, checked, msg = ch.Account.Protocol, ch.Account.User, stamp(ch.State.CheckedAt), ch.State.Message
					if len(m.Channels) > 1 {
						addr += fmt.Sprintf(" (+%d)", len(m.Channels)-1)
					}
				} else {
					st = "(no account)"
				}
				tw.row(m.Name, m.Group, m.Role, manager.ZoneOf(m.Machine), encl, proto, addr, user, st, reason, pw, since, checked, msg)
				return nil
			})
			if err != nil {
				return apiErr(err)
			}
			if tw != nil {
				tw.flush()
				switch {
				case n == 0 && q != (client.MachineQuery{}):
					fmt.Fprintln(out, "no machine matches")
				case n == 0:
					fmt.Fprintln(out, "no machines (add some: lightsout import FILE, or lightsout machines add)")
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&q.Group, "group", "", "only machines in this group")
	c.Flags().StringVar(&q.Tag, "tag", "", "only machines with this tag")
	c.Flags().StringVar(&q.State, "state", "", "only machines with a channel in this state (Connectable, NotResponding, NotAuthenticated, Invalid, Unknown)")
	c.Flags().StringVar(&q.Reason, "reason", "", "only machines with a channel declared for this reason (wrong_password, silent, ...)")
	c.Flags().StringVar(&q.Condition, "condition", "", "only machines with a channel in this condition (Busy, Degraded, Insecure)")
	c.Flags().StringVar(&q.Enclosure, "enclosure", "", "only this enclosure's blades")
	c.Flags().StringVar(&q.Zone, "zone", "", "only this zone's machines (default: those naming none)")
	return c
}

func hostPort(addr string, port int) string {
	if port == 0 || port == inventory.DefaultPort {
		return addr
	}
	return net.JoinHostPort(addr, strconv.Itoa(port))
}

func stateText(ch manager.ChannelView) string {
	s := string(ch.State.State)
	for _, c := range ch.State.Conditions {
		s += "+" + string(c)
	}
	if ch.StaleSince != nil {
		s += " (stale since " + stamp(*ch.StaleSince) + ")"
	}
	return s
}

func newMachinesShowCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Show one machine, its channels, their evidence and the remedy",
		Long: `show prints a machine's identity and grouping and, for each OOB channel, its
account (never the password), state, reason, since when, the last check, the
GUID and power state the BMC reported, and — when it is not Connectable — what
to do about it.` + serverHelp,
		Example: `  lightsout machines show web-1
  lightsout machines show web-1 -o json | jq .channels[0].state.evidence`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAPI(cmd, f, func(cl *client.Client, ctx context.Context) (manager.MachineView, error) {
				return cl.Machine(ctx, args[0])
			}, func(out io.Writer, m manager.MachineView) {
				printMachine(out, m)
			})
		},
	}
}

func printMachine(w io.Writer, m manager.MachineView) {
	kv := newKV(w)
	kv.add("name", m.Name)
	g := m.GUID
	if g == "" && m.Registering {
		g = "(pinned by the first Connectable check)"
	}
	kv.add("guid", g)
	kv.add("group", m.Group)
	kv.add("role", m.Role)
	kv.add("tags", strings.Join(m.Tags, ", "))
	if m.Spare {
		kv.add("spare", "yes")
	}
	if m.Enclosure != "" {
		kv.add("enclosure", fmt.Sprintf("%s slot %d", m.Enclosure, m.Slot))
	}
	kv.add("zone", manager.ZoneOf(m.Machine))
	kv.add("updated", stamp(m.UpdatedAt))
	kv.flush()
	if len(m.Channels) == 0 {
		fmt.Fprintln(w, "\nno OOB account: add one with lightsout accounts add --machine "+m.Name+" --address ADDR ...")
	}
	for _, ch := range m.Channels {
		printChannel(w, ch)
	}
}

func printChannel(w io.Writer, ch manager.ChannelView) {
	a := ch.Account
	fmt.Fprintf(w, "\nOOB account %d: %s %s user %q privilege %s", a.ID, a.Protocol, hostPort(a.Address, a.Port), a.User, a.Privilege)
	if a.CipherSuite != 0 {
		fmt.Fprintf(w, " cipher suite %d", a.CipherSuite)
	}
	if a.RedfishAuth != "" {
		fmt.Fprintf(w, " redfish_auth %s", a.RedfishAuth)
	}
	fmt.Fprintln(w)
	kv := newKV(w)
	s := ch.State
	st := stateText(ch)
	if s.Reason != "" {
		st += " (" + string(s.Reason) + ")"
	}
	kv.add("  state", st)
	kv.add("  since", ago(s.Since))
	kv.add("  checked", ago(s.CheckedAt))
	kv.add("  message", s.Message)
	kv.add("  reported guid", s.GUID)
	kv.add("  power", s.Power)
	if ch.Remedy != "" {
		kv.add("  remedy", ch.Remedy)
	}
	kv.flush()
}

type machineAddFlags struct {
	address, user, passwordFile, guid, group, role, enclosure, privilege, protocol string
	tags                                                                           []string
	port, slot, cipherSuite                                                        int
	spare                                                                          bool
}

func newMachinesAddCmd(f *apiFlags) *cobra.Command {
	a := &machineAddFlags{}
	c := &cobra.Command{
		Use:   "add NAME --address ADDR --user USER [--password-file FILE] [flags]",
		Short: "Add a machine with its OOB account; the server checks it at once",
		Long: `add creates a machine and its first OOB account (IPMI 2.0 by default). The server
checks the channel at once; lightsout machines show NAME tells the result. With
--guid the BMC must report that System GUID (any layout); without it the GUID is
pinned from the first Connectable check (master-machine registration).

The BMC password is never a flag value: --password-file FILE, or the
LIGHTSOUT_PASSWORD environment variable, or a prompt on the terminal. Needs the
operator role.` + serverHelp,
		Example: `  lightsout machines add web-1 --address 10.0.4.17 --user admin --password-file ~/.bmc-pass --group web --tag rack-7
  LIGHTSOUT_PASSWORD=... lightsout machines add blade-3 --address 10.0.5.3 --user admin --enclosure enc-1 --slot 3
  lightsout machines add spare-1 --address 10.0.4.90 --user admin --password-file pw --spare`,
		Args: exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			if a.address == "" {
				return usageErr("--address is required: the BMC's address (IPv4, IPv6 or host name)")
			}
			if a.user == "" {
				return usageErr("--user is required: the BMC user the server logs in as")
			}
			if err := checkPortSlot(cmd, a.port, a.slot, a.enclosure); err != nil {
				return err
			}
			pw, err := readPassword(a.passwordFile)
			if err != nil {
				return err
			}
			in := manager.MachineInput{Name: args[0], GUID: a.guid, Group: a.group, Tags: a.tags, Role: a.role, Spare: a.spare,
				Enclosure: a.enclosure, Slot: a.slot,
				Account: &manager.AccountInput{Protocol: a.protocol, Address: a.address, Port: a.port, User: &a.user,
					Password: &pw, Privilege: a.privilege}}
			if cmd.Flags().Changed("cipher-suite") {
				in.Account.CipherSuite = &a.cipherSuite
			}
			return callAPI(cmd, f, func(cl *client.Client, ctx context.Context) (manager.MachineView, error) {
				return cl.AddMachine(ctx, in)
			}, func(out io.Writer, m manager.MachineView) {
				fmt.Fprintf(out, "added %s; its channel is checked now (lightsout machines show %s)\n", m.Name, m.Name)
			})
		},
	}
	fl := c.Flags()
	fl.StringVar(&a.address, "address", "", "BMC address: IPv4, IPv6 or host name (required)")
	fl.IntVar(&a.port, "port", 0, "BMC port (default 623)")
	fl.StringVar(&a.user, "user", "", "BMC user (required)")
	fl.StringVar(&a.passwordFile, "password-file", "", "file holding the BMC password (else $LIGHTSOUT_PASSWORD or a prompt)")
	fl.StringVar(&a.guid, "guid", "", "expected System GUID, any layout (default: pinned from the first Connectable check)")
	fl.StringVar(&a.group, "group", "", "group name")
	fl.StringSliceVar(&a.tags, "tag", nil, "tag (repeat for more)")
	fl.StringVar(&a.role, "role", "", "what the machine does in its group (moves to the spare on replacement)")
	fl.BoolVar(&a.spare, "spare", false, "put the machine in the spare pool")
	fl.StringVar(&a.enclosure, "enclosure", "", "enclosure (blade chassis) the machine sits in")
	fl.IntVar(&a.slot, "slot", 0, "slot in the enclosure (with --enclosure)")
	fl.StringVar(&a.privilege, "privilege", "", "IPMI privilege to request: user, operator or administrator (default administrator)")
	fl.IntVar(&a.cipherSuite, "cipher-suite", 0, "pin an RMCP+ cipher suite: 3 or 17 (default: 17, then 3)")
	fl.StringVar(&a.protocol, "protocol", "", "ipmi (default) or redfish")
	return c
}

// exactName accepts exactly one non-empty NAME argument.
func exactName(cmd *cobra.Command, args []string) error {
	if len(args) != 1 || strings.TrimSpace(args[0]) == "" {
		return usageErr("%s takes exactly one NAME (see '%s --help')", cmd.Name(), cmd.CommandPath())
	}
	return nil
}

func checkPortSlot(cmd *cobra.Command, port, slot int, enclosure string) error {
	if cmd.Flags().Changed("port") && (port < 1 || port > 65535) {
		return usageErr("--port %d: not a port (1-65535)", port)
	}
	if slot != 0 && enclosure == "" {
		return usageErr("--slot needs --enclosure")
	}
	if slot < 0 {
		return usageErr("--slot %d: must be 1 or more", slot)
	}
	return nil
}

// readPassword reads the BMC password from file, else
// LIGHTSOUT_PASSWORD, else a terminal prompt.
func readPassword(file string) (string, error) {
	if file != "" {
		pw, err := inventory.ReadPasswordFile(file)
		if err != nil {
			return "", usageErr("--password-file: %v", err)
		}
		return string(pw), nil
	}
	pw, err := (&checkrun.PasswordSource{}).Get()
	if err != nil {
		return "", &exitError{code: 2, err: err}
	}
	return string(pw), nil
}

func newMachinesSetCmd(f *apiFlags) *cobra.Command {
	var group, role, enclosure string
	var tags []string
	var spare bool
	var slot int
	var zone string
	c := &cobra.Command{
		Use:   "set NAME [--group G] [--role R] [--tag T ...] [--spare=true|false] [--enclosure E --slot N] [--zone Z]",
		Short: "Edit a machine's grouping (GUID changes go through adopt)",
		Long: `set changes only the fields given: --tag replaces the tag list (--tag "" clears
it), --group "" leaves every group, --zone moves the machine to the instances
serving that zone (--zone "" or default: the default zone; docs/scale-out.md).
The expected GUID is changed only by
lightsout adopt (admin), accounts by lightsout accounts set. Needs the operator
role.` + serverHelp,
		Example: `  lightsout machines set web-1 --group db --role db1.example.com
  lightsout machines set spare-1 --spare
  lightsout machines set web-1 --tag rack-7 --tag prod
  lightsout machines set web-1 --zone dc2`,
		Args: exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			fl := cmd.Flags()
			var p manager.MachinePatch
			if fl.Changed("group") {
				p.Group = &group
			}
			if fl.Changed("role") {
				p.Role = &role
			}
			if fl.Changed("tag") {
				clean := []string{}
				for _, t := range tags {
					if t != "" {
						clean = append(clean, t)
					}
				}
				p.Tags = &clean
			}
			if fl.Changed("spare") {
				p.Spare = &spare
			}
			if fl.Changed("enclosure") {
				p.Enclosure = &enclosure
			}
			if fl.Changed("zone") {
				p.Zone = &zone
			}
			if fl.Changed("slot") {
				if slot < 0 {
					return usageErr("--slot %d: must be 1 or more", slot)
				}
				p.Slot = &slot
			}
			if p == (manager.MachinePatch{}) {
				return usageErr("nothing to change: give --group, --role, --tag, --spare, --enclosure, --slot or --zone")
			}
			return callAPI(cmd, f, func(cl *client.Client, ctx context.Context) (manager.MachineView, error) {
				return cl.UpdateMachine(ctx, args[0], p)
			}, func(out io.Writer, m manager.MachineView) {
				printMachine(out, m)
			})
		},
	}
	fl := c.Flags()
	fl.StringVar(&group, "group", "", "group name (\"\" for none)")
	fl.StringVar(&role, "role", "", "role in the group")
	fl.StringSliceVar(&tags, "tag", nil, "tags, replacing the current ones (repeat for more)")
	fl.BoolVar(&spare, "spare", false, "in the spare pool")
	fl.StringVar(&enclosure, "enclosure", "", "enclosure name (\"\" for none)")
	fl.IntVar(&slot, "slot", 0, "slot in the enclosure")
	fl.StringVar(&zone, "zone", "", "zone: the instances serving it check the machine (\"\" for the default zone)")
	return c
}

func newMachinesRmCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a machine with its accounts and history (admin)",
		Long: `rm deletes a machine, its OOB accounts and their state history. The audit log
keeps a record of it. Needs the admin role.` + serverHelp,
		Example: `  lightsout machines rm web-1`,
		Args:    exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			if err := cl.DeleteMachine(cmd.Context(), args[0]); err != nil {
				return apiErr(err)
			}
			if !f.structured() {
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", args[0])
			}
			return nil
		},
	}
}
