package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/probe"
	"github.com/lightsout/lightsout/internal/state"
)

// runServerCheck is `lightsout check NAME... | --group G`: the server
// checks its machines now. Exit 0 only if every channel is Connectable.
func runServerCheck(cmd *cobra.Command, f *checkFlags, names []string) error {
	if err := checkFormat(f.output); err != nil {
		return err
	}
	for _, fl := range []string{"host", "inventory", "user", "password-file", "guid", "name", "timeout", "parallel",
		"cipher-suite", "cipher-suites", "redfish-auth", "protocol", "privilege", "sockets", "debug", "env-password"} {
		if cmd.Flags().Changed(fl) {
			return usageErr("--%s checks BMCs directly; with machine names or --group the server checks them with its own settings", fl)
		}
	}
	names, err := expandNames("machine names", names)
	if err != nil {
		return err
	}
	f.api.output = f.output
	cl, err := f.api.client(cmd)
	if err != nil {
		return err
	}
	res, err := cl.Check(cmd.Context(), names, f.group)
	if err != nil {
		return apiErr(err)
	}
	out := cmd.OutOrStdout()
	ok := 0
	for _, r := range res {
		if r.Error == "" && r.State.State == state.Connectable {
			ok++
		}
	}
	if structuredFormat(f.output) {
		if err := emit(f.output, out, res...); err != nil {
			return err
		}
	} else {
		p := newCheckPrinter(out, f.output, false, len(res))
		p.Quiet = !f.allRows && rowsTerminal(out)
		for _, r := range res {
			p.Add(observation(r))
		}
		p.Finish()
		for _, r := range res {
			if r.Remedy != "" && r.State.State != state.Connectable {
				fmt.Fprintf(out, "%s: %s\n", r.Machine, r.Remedy)
			}
		}
	}
	if ok != len(res) {
		return &exitError{code: 1, err: fmt.Errorf("%d of %d channels not Connectable", len(res)-ok, len(res))}
	}
	return nil
}

// observation renders a server's check result in check's table.
func observation(r manager.CheckResult) probe.Observation {
	o := probe.Observation{Name: r.Machine, Host: hostPort(r.Account.Address, r.Account.Port), Protocol: r.Account.Protocol,
		State: r.State.State, Reason: r.State.Reason, Conditions: r.State.Conditions, Message: r.State.Message,
		GUID: r.State.GUID, At: r.State.CheckedAt}
	o.Evidence.Power = r.State.Power
	var notes []string
	if r.Skipped != "" {
		notes = append(notes, r.Skipped)
	}
	if r.Error != "" {
		o.State = "(none)"
		notes = append(notes, r.Error)
	}
	if len(notes) > 0 {
		o.Message = strings.TrimSpace(strings.Join(append(notes, o.Message), "; "))
	}
	return o
}
