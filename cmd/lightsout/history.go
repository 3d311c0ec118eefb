package main

import (
	"context"
	"fmt"

	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/spf13/cobra"
)

func newHistoryCmd() *cobra.Command {
	f := &apiFlags{}
	var limit int
	var before int64
	c := &cobra.Command{
		Use:   "history NAME [--limit N]",
		Short: "Show a machine's channel state changes, newest first",
		Long: `history lists every declared state change of a machine's OOB channels: when,
from which state to which, the reason and the message the check gave. Older
pages: --before ID (the last ID shown, in -o json).` + serverHelp,
		Example: `  lightsout history web-1
  lightsout history web-1 --limit 500 -o json`,
		Args: exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			if limit < 1 || limit > 10000 {
				return usageErr("--limit %d: from 1 to 10000", limit)
			}
			if before < 0 {
				return usageErr("--before %d: must be a transition ID", before)
			}
			h, err := fetch(cmd, f, func(cl *client.Client, ctx context.Context) (wire.History, error) {
				return cl.History(ctx, args[0], before, limit)
			})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.structured() {
				return emit(f.output, out, h.Transitions...)
			}
			if len(h.Transitions) == 0 {
				fmt.Fprintf(out, "no state changes recorded for %s yet\n", args[0])
				return nil
			}
			tw := newTable(out, f.output, "+ID", "AT", "+ACCOUNT", "FROM", "TO", "REASON", "MESSAGE")
			for _, t := range h.Transitions {
				to := string(t.To)
				for _, c := range t.Conditions {
					to += "+" + string(c)
				}
				tw.row(t.ID, stamp(t.At), t.AccountID, t.From, to, t.Reason, t.Message)
			}
			tw.flush()
			if h.NextBefore != 0 {
				fmt.Fprintf(out, "(older: lightsout history %s --before %d)\n", args[0], h.NextBefore)
			}
			return nil
		},
	}
	f.add(c.Flags(), true)
	c.Flags().IntVar(&limit, "limit", 50, "at most this many changes")
	c.Flags().Int64Var(&before, "before", 0, "only changes older than this transition ID")
	return c
}
