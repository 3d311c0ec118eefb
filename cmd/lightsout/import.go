package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/api"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/checkrun"
	"github.com/lightsout/lightsout/internal/inventory"
)

func newImportCmd() *cobra.Command {
	f := &apiFlags{}
	var replace bool
	c := &cobra.Command{
		Use:   "import FILE [--replace]",
		Short: "Import an inventory file (YAML or CSV) into the server, all or nothing",
		Long: `import sends an inventory file (docs/inventory.md) to the server, which stores
every machine with its OOB account, and the enclosures, in one transaction. The
file is validated here first, then on the server: any problem refuses the whole
import, and every problem is listed with its line and field (exit 2).

Passwords are read here, never by the server: each machine's password_file
(relative to the file's directory) or password_env; machines naming neither use
LIGHTSOUT_PASSWORD or one prompt on the terminal. They travel to the server in
the request body, and are stored encrypted.

An existing machine refuses the import unless --replace (admin) is given, which
updates it. Needs the operator role.` + serverHelp,
		Example: `  lightsout import fleet.yaml
  LIGHTSOUT_PASSWORD=... lightsout import racks.csv
  lightsout import fleet.yaml --replace --token-file ~/.lightsout/admin.token`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			req, err := buildImport(args[0], replace)
			if err != nil {
				return err
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			res, err := cl.Import(cmd.Context(), req)
			if err != nil {
				return apiErr(err)
			}
			if f.structured() {
				return emit(f.output, cmd.OutOrStdout(), res)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "imported %d machines and %d enclosures from %s; the server checks them now (lightsout machines list)\n",
				res.Machines, res.Enclosures, args[0])
			return nil
		},
	}
	f.add(c.Flags(), true)
	c.Flags().BoolVar(&replace, "replace", false, "update machines that already exist instead of refusing the import (admin)")
	return c
}

// buildImport validates the file and reads every password before anything
// is sent: bad input stops here with exit 2.
func buildImport(path string, replace bool) (wire.ImportRequest, error) {
	format, err := inventory.FormatFromPath(path)
	if err != nil {
		return wire.ImportRequest{}, usageErr("%v", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return wire.ImportRequest{}, usageErr("%v", err)
	}
	if st.Size() > api.MaxImportBody/2 {
		return wire.ImportRequest{}, usageErr("%s is %d bytes; the server takes inventories up to %d MiB (split it)", path, st.Size(), api.MaxImportBody/2>>20)
	}
	content, err := os.ReadFile(path)
	if err != nil {
		return wire.ImportRequest{}, usageErr("%v", err)
	}
	inv, err := inventory.Load(path)
	if err != nil {
		return wire.ImportRequest{}, &exitError{code: 2, err: err}
	}
	if len(inv.Machines) == 0 && len(inv.Enclosures) == 0 {
		return wire.ImportRequest{}, usageErr("%s: no machines and no enclosures", path)
	}
	req := wire.ImportRequest{Format: strings.ToLower(format.String()), Content: string(content), Source: path,
		Passwords: map[string]string{}, EnclosurePasswords: map[string]string{}, Replace: replace}
	pws := &inventory.Passwords{Dir: inv.Dir}
	shared := &checkrun.PasswordSource{}
	for _, m := range inv.Machines {
		pw, err := pws.Of(m)
		if errors.Is(err, inventory.ErrNoPassword) {
			pw, err = shared.Get()
		}
		if err != nil {
			return req, &exitError{code: 2, err: fmt.Errorf("%s:%d: %v", path, m.Line, err)}
		}
		req.Passwords[m.Name] = string(pw)
	}
	for _, e := range inv.Enclosures {
		pw, err := pws.OfEnclosure(e)
		if errors.Is(err, inventory.ErrNoPassword) {
			if e.User == "" {
				continue
			}
			pw, err = shared.Get()
		}
		if err != nil {
			return req, &exitError{code: 2, err: fmt.Errorf("%s:%d: %v", path, e.Line, err)}
		}
		req.EnclosurePasswords[e.Name] = string(pw)
	}
	return req, nil
}

func newExportCmd() *cobra.Command {
	f := &apiFlags{}
	var out, format, formatAlias string
	c := &cobra.Command{
		Use:   "export [-o yaml|csv] [--out FILE]",
		Short: "Export the server's inventory as a YAML or CSV file (no passwords)",
		Long: `export writes the server's inventory — machines with their first OOB account,
and (in YAML) the enclosures — in the format lightsout import and lightsout
check --inventory read. Passwords are never exported: add password_file or
password_env to the file before importing it elsewhere.

-o (--output) is the format, yaml or csv, as on every command; --out FILE
writes the file (mode 0644, replaced whole), its format following the
extension unless -o says otherwise. Without --out the file goes to standard
output (YAML by default).` + serverHelp,
		Example: `  lightsout export --out fleet.yaml
  lightsout export -o csv > fleet.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "" && formatAlias != "" && !strings.EqualFold(format, formatAlias) {
				return usageErr("-o %s and --format %s disagree; give one", format, formatAlias)
			}
			if format == "" {
				format = formatAlias
			}
			if format == "" {
				format = "yaml"
				if out != "" && out != "-" {
					ff, err := inventory.FormatFromPath(out)
					if err != nil {
						return usageErr("--out: %v (or give -o yaml or -o csv)", err)
					}
					format = strings.ToLower(ff.String())
				}
			}
			given := format
			format = strings.ToLower(format)
			if format == "yml" {
				format = "yaml"
			}
			if format != "yaml" && format != "csv" {
				if strings.ContainsAny(given, "./") {
					return usageErr("--output %q: want yaml or csv (-o is the format, as on every command; write a file with --out %s)", given, given)
				}
				return usageErr("--output %q: want yaml or csv", given)
			}
			cl, err := f.client(cmd)
			if err != nil {
				return err
			}
			b, err := cl.Export(cmd.Context(), format)
			if err != nil {
				return apiErr(err)
			}
			if out == "" || out == "-" {
				_, err := cmd.OutOrStdout().Write(b)
				return err
			}
			tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*")
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			defer os.Remove(tmp.Name())
			if _, err := tmp.Write(b); err != nil {
				tmp.Close()
				return &exitError{code: 1, err: err}
			}
			if err := tmp.Chmod(0o644); err != nil {
				tmp.Close()
				return &exitError{code: 1, err: err}
			}
			if err := tmp.Close(); err != nil {
				return &exitError{code: 1, err: err}
			}
			if err := os.Rename(tmp.Name(), out); err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", out)
			return nil
		},
	}
	f.add(c.Flags(), false)
	c.Flags().StringVarP(&format, "output", "o", "", "`FORMAT`: yaml or csv (default: from --out's extension, else yaml)")
	c.Flags().StringVar(&out, "out", "", "write to `FILE` (mode 0644) instead of standard output")
	c.Flags().StringVar(&formatAlias, "format", "", "the same as -o (older name)")
	_ = c.Flags().MarkHidden("format")
	return c
}
