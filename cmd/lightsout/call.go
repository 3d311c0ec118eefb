package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/api/client"
)

// callAPI is the one shape of a client command: the output format (-o)
// checked, the API client opened, one call made with the command's
// context (a method expression fits: (*client.Client).Incidents); an API error is said as the API said it (apiErr); the reply goes
// out as one record for -o json or yaml, else text prints it.
func callAPI[T any](cmd *cobra.Command, f *apiFlags, call func(*client.Client, context.Context) (T, error), text func(io.Writer, T)) error {
	v, err := fetch(cmd, f, call)
	if err != nil {
		return err
	}
	if f.structured() {
		return emit(f.output, cmd.OutOrStdout(), v)
	}
	text(cmd.OutOrStdout(), v)
	return nil
}

// listAPI is callAPI for a list: each element is one record (a JSON line,
// a YAML document).
func listAPI[T any](cmd *cobra.Command, f *apiFlags, call func(*client.Client, context.Context) ([]T, error), text func(io.Writer, []T)) error {
	vs, err := fetch(cmd, f, call)
	if err != nil {
		return err
	}
	if f.structured() {
		return emit(f.output, cmd.OutOrStdout(), vs...)
	}
	text(cmd.OutOrStdout(), vs)
	return nil
}

// fetch is the first half of callAPI, for the commands that print in their
// own way (an exit status from the reply, a reply that is a page).
func fetch[T any](cmd *cobra.Command, f *apiFlags, call func(*client.Client, context.Context) (T, error)) (T, error) {
	var zero T
	if err := f.checkOutput(); err != nil {
		return zero, err
	}
	cl, err := f.client(cmd)
	if err != nil {
		return zero, err
	}
	v, err := call(cl, cmd.Context())
	if err != nil {
		return zero, apiErr(err)
	}
	return v, nil
}
