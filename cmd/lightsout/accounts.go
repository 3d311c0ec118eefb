package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/manager"
)

func newAccountsCmd() *cobra.Command {
	f := &apiFlags{}
	c := &cobra.Command{
		Use:   "accounts",
		Short: "Manage OOB accounts: how the server reaches each machine's BMC",
		Long: `accounts manages OOB accounts. An account is one channel from the server to a
machine's BMC: protocol, address, port, user, password (encrypted at rest,
never shown), privilege and cipher suite. Each account has its own state;
editing the user or password of a refused account makes the server retry it
at once (otherwise it waits, so as not to lock the BMC account).

Viewers may list and show, operators add and edit, admins remove.` + serverHelp,
		Example: `  lightsout accounts list --machine web-1
  lightsout accounts set 12 --password-file ~/.new-bmc-pass
  lightsout accounts add --machine web-1 --address 10.0.8.17 --user admin --password-file pw`,
		Args: cobra.NoArgs,
	}
	f.add(c.PersistentFlags(), true)
	c.AddCommand(newAccountsListCmd(f), newAccountsShowCmd(f), newAccountsAddCmd(f), newAccountsSetCmd(f), newAccountsRmCmd(f))
	return c
}

func parseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id < 1 {
		return 0, usageErr("account ID %q: want a positive whole number (see lightsout accounts list)", s)
	}
	return id, nil
}

func newAccountsListCmd(f *apiFlags) *cobra.Command {
	var machine string
	c := &cobra.Command{
		Use:   "list [--machine M]",
		Short: "List OOB accounts with their states",
		Long: `list prints every OOB account (or one machine's) with its ID, machine, address,
user, state and reason. The ID is what accounts show/set/rm take. -o wide adds
the cipher suite (IPMI) or Redfish login, since when, the last check and its
message.` + serverHelp,
		Example: `  lightsout accounts list
  lightsout accounts list --machine web-1 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return listAPI(cmd, f, func(cl *client.Client, ctx context.Context) ([]manager.ChannelView, error) {
				return cl.Accounts(ctx, machine)
			}, func(out io.Writer, accts []manager.ChannelView) {
				tw := newTable(out, f.output, "ID", "MACHINE", "PROTOCOL", "ADDRESS", "USER", "PRIVILEGE", "+CIPHER", "STATE", "REASON", "+SINCE", "+CHECKED", "+MESSAGE")
				for _, a := range accts {
					cipher := "auto"
					if a.Account.Protocol == "redfish" {
						cipher = a.Account.RedfishAuth
					} else if a.Account.CipherSuite != 0 {
						cipher = strconv.Itoa(a.Account.CipherSuite)
					}
					tw.row(a.Account.ID, a.Account.Machine, a.Account.Protocol, hostPort(a.Account.Address, a.Account.Port),
						a.Account.User, a.Account.Privilege, cipher, stateText(a), a.State.Reason, stamp(a.State.Since), stamp(a.State.CheckedAt), a.State.Message)
				}
				tw.flush()
			})
		},
	}
	c.Flags().StringVar(&machine, "machine", "", "only this machine's accounts")
	return c
}

func newAccountsShowCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one OOB account with its state, evidence and remedy",
		Long: `show prints one account (never its password), its channel's state, reason,
since when, what the BMC last reported and, when it is not Connectable, the
remedy.` + serverHelp,
		Example: `  lightsout accounts show 12
  lightsout accounts show 12 -o json | jq .state.evidence`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			return callAPI(cmd, f, func(cl *client.Client, ctx context.Context) (manager.ChannelView, error) {
				return cl.Account(ctx, id)
			}, func(out io.Writer, a manager.ChannelView) {
				fmt.Fprintf(out, "machine: %s", a.Account.Machine)
				printChannel(out, a)
			})
		},
	}
}

type accountFlags struct {
	machine, protocol, address, user, passwordFile, privilege string
	redfishAuth                                               string
	port, cipherSuite                                         int
	keepPassword                                              bool
	cipherSuites                                              string
}

func (a *accountFlags) add(c *cobra.Command, forAdd bool) {
	fl := c.Flags()
	if forAdd {
		fl.StringVar(&a.machine, "machine", "", "the machine the account belongs to (required)")
		fl.StringVar(&a.protocol, "protocol", "", "ipmi (default) or redfish")
	} else {
		fl.StringVar(&a.protocol, "protocol", "", "ipmi or redfish")
		fl.BoolVar(&a.keepPassword, "keep-password", false, "admin: keep the stored password when --protocol, --address or --port change (audited); without it give --password-file again")
	}
	fl.StringVar(&a.address, "address", "", "BMC address: IPv4, IPv6 or host name")
	fl.IntVar(&a.port, "port", 0, "BMC port (default 623)")
	fl.StringVar(&a.user, "user", "", "BMC user")
	fl.StringVar(&a.passwordFile, "password-file", "", "file holding the BMC password")
	fl.StringVar(&a.privilege, "privilege", "", "IPMI privilege to request: user, operator or administrator")
	fl.IntVar(&a.cipherSuite, "cipher-suite", 0, "pin an RMCP+ cipher suite: 3 or 17 (0: negotiate from --cipher-suites)")
	fl.StringVar(&a.cipherSuites, "cipher-suites", "", "cipher suites allowed, strongest first, e.g. 17,3 (never 0; \"default\": the server's --cipher-suites)")
	fl.StringVar(&a.redfishAuth, "redfish-auth", "", "Redfish login: auto (a session when the service offers one, else HTTP Basic), session or basic")
}

// suiteInput reads --cipher-suites for the API; the server validates it
// (suite 0 and unknown suites are refused naming the field).
func (a *accountFlags) suiteInput() (*[]int, error) {
	l := []int{}
	if a.cipherSuites == "default" {
		return &l, nil
	}
	for _, f := range strings.Split(a.cipherSuites, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, usageErr("--cipher-suites %q: %q is not a cipher suite number (want e.g. 17,3)", a.cipherSuites, f)
		}
		l = append(l, n)
	}
	return &l, nil
}

func newAccountsAddCmd(f *apiFlags) *cobra.Command {
	a := &accountFlags{}
	c := &cobra.Command{
		Use:   "add --machine M --address ADDR --user USER [--password-file FILE] [flags]",
		Short: "Add an OOB account to a machine; the server checks it at once",
		Long: `add gives a machine another OOB channel (a second BMC address, say). The
server checks it at once. The password is never a flag value: --password-file
FILE, or LIGHTSOUT_PASSWORD, or a prompt on the terminal. Needs the operator
role.` + serverHelp,
		Example: `  lightsout accounts add --machine web-1 --address 10.0.8.17 --user admin --password-file ~/.bmc-pass`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			switch {
			case a.machine == "":
				return usageErr("--machine is required: the machine the account belongs to")
			case a.address == "":
				return usageErr("--address is required: the BMC's address")
			case a.user == "":
				return usageErr("--user is required: the BMC user the server logs in as")
			}
			if err := checkPortSlot(cmd, a.port, 0, ""); err != nil {
				return err
			}
			pw, err := readPassword(a.passwordFile)
			if err != nil {
				return err
			}
			in := manager.AccountInput{Machine: a.machine, Protocol: a.protocol, Address: a.address, Port: a.port,
				User: &a.user, Password: &pw, Privilege: a.privilege}
			if cmd.Flags().Changed("cipher-suite") {
				in.CipherSuite = &a.cipherSuite
			}
			if cmd.Flags().Changed("redfish-auth") {
				in.RedfishAuth = &a.redfishAuth
			}
			if cmd.Flags().Changed("cipher-suites") {
				if in.CipherSuites, err = a.suiteInput(); err != nil {
					return err
				}
			}
			return callAPI(cmd, f, func(cl *client.Client, ctx context.Context) (manager.ChannelView, error) {
				return cl.AddAccount(ctx, in)
			}, func(out io.Writer, v manager.ChannelView) {
				fmt.Fprintf(out, "added account %d to %s; it is checked now (lightsout accounts show %d)\n", v.Account.ID, v.Account.Machine, v.Account.ID)
			})
		},
	}
	a.add(c, true)
	return c
}

func newAccountsSetCmd(f *apiFlags) *cobra.Command {
	a := &accountFlags{}
	c := &cobra.Command{
		Use:   "set ID [--protocol P] [--address A] [--port N] [--user U] [--password-file F] [--keep-password] [--privilege P] [--cipher-suite N] [--cipher-suites L] [--redfish-auth auto|session|basic]",
		Short: "Edit an OOB account (a changed user or password is retried at once, once per lockout-guard interval)",
		Long: `set changes only the fields given. After the BMC's password or user changed
(the NotAuthenticated state), set the new one here: the server retries the
account at once instead of waiting out its lockout guard — once per guard
interval (10 min): further edits wait, and set says until when. Setting the
same user and password again is no change and makes no login.

The stored password is bound to the account's protocol, address and port
(docs/security.md): changing any of them needs the password again
(--password-file), or an admin's --keep-password (audited). A Redfish
account that moved must have its new certificate accepted
(lightsout accept-cert) before credentials are sent. Needs the operator
role.` + serverHelp,
		Example: `  lightsout accounts set 12 --password-file ~/.new-bmc-pass
  lightsout accounts set 12 --address 10.0.4.18 --port 623 --password-file ~/.bmc-pass
  lightsout accounts set 12 --address 10.0.4.18 --keep-password     # admin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			fl := cmd.Flags()
			if err := checkPortSlot(cmd, a.port, 0, ""); err != nil {
				return err
			}
			var in manager.AccountInput
			changed := false
			if fl.Changed("protocol") {
				in.Protocol, changed = a.protocol, true
			}
			if fl.Changed("address") {
				if a.address == "" {
					return usageErr("--address: must not be empty")
				}
				in.Address, changed = a.address, true
			}
			if a.keepPassword {
				if fl.Changed("password-file") {
					return usageErr("--keep-password: give either it or --password-file")
				}
				in.KeepPassword = true
			}
			if fl.Changed("port") {
				in.Port, changed = a.port, true
			}
			if fl.Changed("user") {
				in.User, changed = &a.user, true
			}
			if fl.Changed("password-file") {
				pw, err := readPassword(a.passwordFile)
				if err != nil {
					return err
				}
				in.Password, changed = &pw, true
			}
			if fl.Changed("privilege") {
				in.Privilege, changed = a.privilege, true
			}
			if fl.Changed("cipher-suite") {
				in.CipherSuite, changed = &a.cipherSuite, true
			}
			if fl.Changed("redfish-auth") {
				in.RedfishAuth, changed = &a.redfishAuth, true
			}
			if fl.Changed("cipher-suites") {
				if in.CipherSuites, err = a.suiteInput(); err != nil {
					return err
				}
				changed = true
			}
			if !changed {
				return usageErr("nothing to change: give --protocol, --address, --port, --user, --password-file, --privilege, --cipher-suite, --cipher-suites or --redfish-auth")
			}
			return callAPI(cmd, f, func(cl *client.Client, ctx context.Context) (manager.ChannelView, error) {
				return cl.UpdateAccount(ctx, id, in)
			}, func(out io.Writer, v manager.ChannelView) {
				fmt.Fprintf(out, "updated account %d of %s\n", v.Account.ID, v.Account.Machine)
				if v.NextAttempt != nil {
					fmt.Fprintf(out, "the lockout guard holds the login with the new credentials until %s (one immediate retry per guard interval)\n",
						v.NextAttempt.Local().Format(time.RFC3339))
				}
			})
		},
	}
	a.add(c, false)
	return c
}

func newAccountsRmCmd(f *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "rm ID",
		Short:   "Remove an OOB account and its history (admin)",
		Long:    `rm deletes one OOB account and its state history. Needs the admin role.` + serverHelp,
		Example: `  lightsout accounts rm 12`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0])
			if err != nil {
				return err
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			if err := cl.DeleteAccount(cmd.Context(), id); err != nil {
				return apiErr(err)
			}
			if !f.structured() {
				fmt.Fprintf(cmd.OutOrStdout(), "removed account %d\n", id)
			}
			return nil
		},
	}
}
