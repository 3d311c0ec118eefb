package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/lightsout/lightsout/internal/api"
	"github.com/lightsout/lightsout/internal/api/wire"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/server"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// directFlags select the database itself instead of the server, for
// bootstrap and recovery (no server, or no admin token left).
type directFlags struct {
	data, db, keyFile string
}

func (d *directFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&d.data, "data", "", "work on the server's data directory directly (no server needed)")
	c.Flags().StringVar(&d.db, "db", "", "work on this PostgreSQL database directly (postgres://USER@HOST/DB; password in PGPASSWORD or ~/.pgpass)")
	c.Flags().StringVar(&d.keyFile, "key-file", "", "the server's key file (default DATA/secret.key)")
}

func (d *directFlags) direct() bool { return d.data != "" || d.db != "" }

// open opens the store the way the server does, refusing to create
// anything: a typo in --data must not start an empty database.
func (d *directFlags) open(ctx context.Context) (*sqlstore.DB, error) {
	dsn := d.db
	if dsn != "" {
		u, err := url.Parse(dsn)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, usageErr("--db: want postgres://USER@HOST[:PORT]/DATABASE")
		}
		if _, has := u.User.Password(); has || u.Query().Has("password") {
			return nil, usageErr("--db: no password on the command line; put it in PGPASSWORD or ~/.pgpass")
		}
	} else {
		dsn = filepath.Join(d.data, "lightsout.db")
		if _, err := os.Stat(dsn); err != nil {
			return nil, usageErr("--data %s: no database there (%v); is it the server's data directory?", d.data, err)
		}
	}
	key := d.keyFile
	if key == "" {
		if d.data == "" {
			return nil, usageErr("--key-file is required with --db (the server's secret.key)")
		}
		key = filepath.Join(d.data, "secret.key")
	}
	if _, err := os.Stat(key); err != nil {
		return nil, usageErr("key file: %v", err)
	}
	box, err := secret.LoadOrCreateKey(key)
	if err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: dsn, Box: box})
	if err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	return st, nil
}

func directAudit(ctx context.Context, st store.Store, action, target, detail string, err error) {
	e := store.AuditEntry{At: time.Now(), Actor: "cli", Action: action, Target: target, Detail: detail, Result: "ok"}
	if err != nil {
		e.Result, e.Error = "failed", err.Error()
	}
	_ = st.Audit(ctx, &e)
}

func newTokenCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke API tokens (admin)",
		Long: `token manages the API's bearer tokens. A token has a name and a role: viewer
(read), operator (check, power, edit the inventory, import) or admin (delete,
adopt, register, tokens). Only a hash is stored; the secret is shown once, at
creation.

Through the server these need an admin token. With --data DIR (or --db DSN)
they work on the server's database directly, without a server or a token: to
bootstrap, or to recover when no admin token is left.` + serverHelp,
		Example: `  lightsout token create --name grafana --role viewer --out grafana.token
  lightsout token create --name ops --role admin --data /var/lib/lightsout --out ops.token
  lightsout token list
  lightsout token revoke grafana`,
		Args: cobra.NoArgs,
	}
	c.AddCommand(newTokenCreateCmd(), newTokenListCmd(), newTokenRevokeCmd())
	return c
}

func newTokenCreateCmd() *cobra.Command {
	f := &apiFlags{}
	d := &directFlags{}
	var name, role, out string
	c := &cobra.Command{
		Use:   "create --name N --role viewer|operator|admin [--out FILE] [--data DIR | --db DSN]",
		Short: "Create an API token; its secret is shown (or written to --out) once",
		Long: `create makes a new token. With --out FILE the secret is written to FILE (mode
0600, never overwriting an existing file) and not printed; otherwise it is
printed once on standard output — store it now. Names are unique, also after a
revocation.` + serverHelp,
		Example: `  lightsout token create --name grafana --role viewer --out ~/.config/lightsout/grafana.token
  lightsout token create --name first-admin --role admin --data /var/lib/lightsout --out admin2.token`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			if name == "" {
				return usageErr("--name is required")
			}
			if !api.ValidTokenName(name) {
				return usageErr("--name %q: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
			}
			r := store.Role(strings.ToLower(role))
			if r.Rank() == 0 {
				return usageErr("--role %q: want viewer, operator or admin", role)
			}
			if out != "" {
				if _, err := os.Stat(out); err == nil {
					return usageErr("--out %s: the file exists; a token file is never overwritten", out)
				}
			}
			var res wire.TokenResponse
			if d.direct() {
				if f.server != "" || f.tokenFile != "" {
					return usageErr("--data/--db work without a server: leave out --server and --token-file")
				}
				st, err := d.open(cmd.Context())
				if err != nil {
					return err
				}
				defer st.Close()
				secretTok, err := server.CreateToken(cmd.Context(), st, name, r, out)
				directAudit(cmd.Context(), st, "token.create", name, "role "+string(r)+" (direct)", err)
				if err != nil {
					if errors.Is(err, store.ErrConflict) {
						return usageErr("--name: a token named %q already exists (names stay taken after a revocation)", name)
					}
					return &exitError{code: 1, err: err}
				}
				res.Secret = secretTok
				res.Token, _ = st.TokenByHash(cmd.Context(), server.HashToken(secretTok))
			} else {
				cl, err := f.client(cmd)
				if err != nil {
					return err
				}
				if res, err = cl.CreateToken(cmd.Context(), name, r); err != nil {
					return apiErr(err)
				}
				if out != "" {
					if err := writeSecretFile(out, res.Secret); err != nil {
						return &exitError{code: 1, err: fmt.Errorf("the token %q was created but its file could not be written (%v); revoke it and try again", name, err)}
					}
				}
			}
			w := cmd.OutOrStdout()
			if out != "" {
				res.Secret = ""
			}
			if f.structured() {
				return emit(f.output, w, res)
			}
			if out != "" {
				fmt.Fprintf(w, "created token %q (role %s); its secret is in %s\n", name, r, out)
				return nil
			}
			fmt.Fprintln(w, res.Secret)
			fmt.Fprintf(cmd.ErrOrStderr(), "created token %q (role %s); the secret above is not shown again\n", name, r)
			return nil
		},
	}
	// Its own --out (the secret, never overwriting) before f.add, which
	// then adds only -o.
	c.Flags().StringVar(&out, "out", "", "write the secret to this new file (mode 0600) instead of printing it")
	f.add(c.Flags(), true)
	d.add(c)
	c.Flags().StringVar(&name, "name", "", "token name (required)")
	c.Flags().StringVar(&role, "role", "", "viewer, operator or admin (required)")
	return c
}

func writeSecretFile(path, s string) error {
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.WriteString(s + "\n"); err != nil {
		fh.Close()
		os.Remove(path)
		return err
	}
	return fh.Close()
}

func newTokenListCmd() *cobra.Command {
	f := &apiFlags{}
	d := &directFlags{}
	c := &cobra.Command{
		Use:     "list [--data DIR | --db DSN]",
		Short:   "List API tokens (never their secrets)",
		Long:    `list prints every token: name, role, when it was created and whether it is revoked.` + serverHelp,
		Example: `  lightsout token list -o json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			var ts []store.Token
			if d.direct() {
				st, err := d.open(cmd.Context())
				if err != nil {
					return err
				}
				defer st.Close()
				if ts, err = st.Tokens(cmd.Context()); err != nil {
					return &exitError{code: 1, err: err}
				}
			} else {
				cl, err := f.client(cmd)
				if err != nil {
					return err
				}
				if ts, err = cl.Tokens(cmd.Context()); err != nil {
					return apiErr(err)
				}
			}
			w := cmd.OutOrStdout()
			if f.structured() {
				return emit(f.output, w, ts...)
			}
			tw := newTable(w, f.output, "+ID", "NAME", "ROLE", "CREATED", "STATUS")
			for _, t := range ts {
				status := "active"
				if t.Revoked {
					status = "revoked"
				}
				tw.row(t.ID, t.Name, t.Role, stamp(t.CreatedAt), status)
			}
			tw.flush()
			return nil
		},
	}
	f.add(c.Flags(), true)
	d.add(c)
	return c
}

func newTokenRevokeCmd() *cobra.Command {
	f := &apiFlags{}
	d := &directFlags{}
	c := &cobra.Command{
		Use:   "revoke NAME [--data DIR | --db DSN]",
		Short: "Revoke an API token at once",
		Long: `revoke makes the token useless immediately; its name stays taken. Revoking the
token you are using works too: the next request is refused.` + serverHelp,
		Example: `  lightsout token revoke grafana
  lightsout token revoke leaked-admin --data /var/lib/lightsout`,
		Args: exactName,
		RunE: func(cmd *cobra.Command, args []string) error {
			if d.direct() {
				st, err := d.open(cmd.Context())
				if err != nil {
					return err
				}
				defer st.Close()
				err = st.RevokeToken(cmd.Context(), args[0])
				directAudit(cmd.Context(), st, "token.revoke", args[0], "(direct)", err)
				if errors.Is(err, store.ErrNotFound) {
					return usageErr("no token named %q", args[0])
				}
				if err != nil {
					return &exitError{code: 1, err: err}
				}
			} else {
				cl, err := f.client(cmd)
				if err != nil {
					return err
				}
				if err := cl.RevokeToken(cmd.Context(), args[0]); err != nil {
					return apiErr(err)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked token %q\n", args[0])
			return nil
		},
	}
	f.add(c.Flags(), false)
	d.add(c)
	return c
}
