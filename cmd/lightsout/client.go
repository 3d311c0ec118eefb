package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/lightsout/lightsout/internal/api/client"
	"github.com/lightsout/lightsout/internal/api/wire"
)

// DefaultServer is where the CLI looks for the management server.
const DefaultServer = "http://127.0.0.1:8623"

// apiFlags are how a command reaches the server: --server, --token-file,
// --config, and the output format.
type apiFlags struct {
	server, tokenFile, config string
	output, outFile           string // -o and --out (output.go)
}

// serverHelp is appended to the Long help of every command that talks to
// the server.
const serverHelp = `

The server is --server URL, else $LIGHTSOUT_SERVER, else server: in the config
file, else ` + DefaultServer + `. The API token is read from --token-file FILE,
else $LIGHTSOUT_TOKEN, else token_file: in the config file
($XDG_CONFIG_HOME/lightsout/cli.yaml, or --config FILE); a token is never a flag
value. The first admin token is DATA_DIR/admin.token on the server.`

func (f *apiFlags) add(fs *pflag.FlagSet, output bool) {
	fs.StringVar(&f.server, "server", "", "management server URL (default $LIGHTSOUT_SERVER, the config file, or "+DefaultServer+")")
	fs.StringVar(&f.tokenFile, "token-file", "", "file holding the API token (default $LIGHTSOUT_TOKEN, or token_file in the config file)")
	fs.StringVar(&f.config, "config", "", "CLI config file (default $XDG_CONFIG_HOME/lightsout/cli.yaml)")
	if output {
		addOutputFlags(fs, &f.output, &f.outFile)
	}
}

// structured reports whether -o asks for records (json, yaml) rather than
// a table.
func (f *apiFlags) structured() bool { return structuredFormat(f.output) }

func (f *apiFlags) checkOutput() error { return checkFormat(f.output) }

// cliConfig is the config file: where the server is and where the token.
type cliConfig struct {
	Server    string `yaml:"server"`
	TokenFile string `yaml:"token_file"`
}

func defaultConfigPath() string {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "lightsout", "cli.yaml")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".config", "lightsout", "cli.yaml")
	}
	return ""
}

// loadConfig reads the config file; a missing default file is no config.
func (f *apiFlags) loadConfig() (cliConfig, string, error) {
	path, explicit := f.config, f.config != ""
	if !explicit {
		path = defaultConfigPath()
	}
	var cfg cliConfig
	if path == "" {
		return cfg, "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return cfg, "", nil
		}
		return cfg, "", usageErr("--config: %v", err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		return cfg, "", usageErr("config file %s: %v (it takes server: and token_file:)", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return cfg, path, nil
}

// client builds the API client from the flags, the environment and the
// config file, in that order of precedence.
func (f *apiFlags) client(cmd *cobra.Command) (*client.Client, error) {
	cfg, cfgPath, err := f.loadConfig()
	if err != nil {
		return nil, err
	}
	srv := f.server
	if srv == "" {
		srv = os.Getenv("LIGHTSOUT_SERVER")
	}
	if srv == "" {
		srv = cfg.Server
	}
	if srv == "" {
		srv = DefaultServer
	}
	u, err := url.Parse(srv)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErr("--server %q: want http://HOST:PORT or https://HOST:PORT", srv)
	}
	if u.User != nil {
		return nil, usageErr("--server: no credentials in the URL; the token comes from --token-file")
	}
	var tok string
	switch {
	case f.tokenFile != "":
		if tok, err = readTokenFile(cmd, f.tokenFile); err != nil {
			return nil, usageErr("--token-file: %v", err)
		}
	case os.Getenv("LIGHTSOUT_TOKEN") != "":
		tok = strings.TrimSpace(os.Getenv("LIGHTSOUT_TOKEN"))
	case cfg.TokenFile != "":
		p := expandHome(cfg.TokenFile)
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(cfgPath), p)
		}
		if tok, err = readTokenFile(cmd, p); err != nil {
			return nil, usageErr("config file %s: token_file: %v", cfgPath, err)
		}
	default:
		return nil, usageErr("no API token: give --token-file FILE, set LIGHTSOUT_TOKEN, or put token_file: in %s (the server writes the first admin token to DATA_DIR/admin.token)", orDefault(defaultConfigPath(), "the config file"))
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		fmt.Fprintf(cmd.ErrOrStderr(), "lightsout: warning: sending the API token over plain http to %s; use https beyond loopback\n", u.Host)
	}
	c, err := client.New(srv, tok)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	c.UserAgent = "lightsout-cli"
	return c, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if h, err := os.UserHomeDir(); err == nil {
			return filepath.Join(h, p[2:])
		}
	}
	return p
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	return strings.HasPrefix(host, "127.") || host == "::1"
}

// readTokenFile reads a token file's first line. A file others may read
// gets a warning (the token is a password).
func readTokenFile(cmd *cobra.Command, path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	if st.Size() > 4096 {
		return "", fmt.Errorf("%s is larger than 4096 bytes; is it really a token file?", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	tok := strings.TrimSpace(line)
	if tok == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "lightsout: warning: %s is readable by others (mode %v); chmod 600 it\n", path, st.Mode().Perm())
	}
	return tok, nil
}

// apiErr maps a client error to an exit status: bad input the server
// refused (invalid_field, bad_request, not_found, conflict) is 2, like
// local usage errors; the rest (unreachable, unauthorized, forbidden,
// refused, internal) is 1. The message names the field; an import's
// problems are listed one per line.
func apiErr(err error) error {
	if err == nil {
		return nil
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	var ce *client.Error
	if !errors.As(err, &ce) {
		return &exitError{code: 1, err: err}
	}
	msg := ce.Message
	if ce.Field != "" && (ce.Code == wire.CodeInvalidField || ce.Code == wire.CodeBadRequest) && !strings.Contains(msg, ce.Field) {
		msg = fmt.Sprintf("%s: %s", ce.Field, msg)
	}
	if len(ce.Errors) > 1 {
		var b strings.Builder
		fmt.Fprintf(&b, "%d problems, nothing imported:", len(ce.Errors))
		for _, p := range ce.Errors {
			b.WriteString("\n  ")
			if p.Line > 0 {
				fmt.Fprintf(&b, "line %d: ", p.Line)
			}
			if p.Machine != "" {
				fmt.Fprintf(&b, "machine %q: ", p.Machine)
			}
			if p.Enclosure != "" {
				fmt.Fprintf(&b, "enclosure %q: ", p.Enclosure)
			}
			if p.Field != "" {
				fmt.Fprintf(&b, "field %q: ", p.Field)
			}
			b.WriteString(p.Reason)
		}
		msg = b.String()
	}
	code := 1
	switch ce.Code {
	case wire.CodeInvalidField, wire.CodeBadRequest, wire.CodeNotFound, wire.CodeConflict, wire.CodeTooLarge:
		code = 2
	case wire.CodeUnauthorized:
		msg += " (check --token-file / LIGHTSOUT_TOKEN)"
	}
	return &exitError{code: code, err: errors.New(msg)}
}

// tabWriter prints an aligned table.
type tabWriter struct {
	tw   *tabwriter.Writer
	hide []bool // cells not shown (wide columns without -o wide; see newTable)
}

func newTabWriter(w io.Writer, header ...string) *tabWriter {
	t := &tabWriter{}
	t.start(w, header)
	return t
}

func (t *tabWriter) start(w io.Writer, header []string) {
	t.tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(t.tw, strings.Join(header, "\t"))
}

// row writes one row, a dash for an empty cell.
func (t *tabWriter) row(cells ...any) {
	parts := make([]string, 0, len(cells))
	for i, c := range cells {
		if i < len(t.hide) && t.hide[i] {
			continue
		}
		s := fmt.Sprint(c)
		if s == "" {
			s = "-"
		}
		parts = append(parts, strings.NewReplacer("\t", " ", "\n", " ").Replace(s))
	}
	fmt.Fprintln(t.tw, strings.Join(parts, "\t"))
}

func (t *tabWriter) flush() { _ = t.tw.Flush() }

// kvWriter prints "key: value" lines aligned, skipping empty values.
type kvWriter struct{ tw *tabwriter.Writer }

func newKV(w io.Writer) *kvWriter { return &kvWriter{tw: tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)} }

func (k *kvWriter) add(key, value string) {
	if value != "" {
		fmt.Fprintf(k.tw, "%s:\t%s\n", key, value)
	}
}

func (k *kvWriter) flush() { _ = k.tw.Flush() }

func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	d := time.Since(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return t.Local().Format("2006-01-02 15:04:05") + " (" + d.String() + " ago)"
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05")
}
