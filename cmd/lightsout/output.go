package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"
)

// The output layer of every command that prints records: -o/--output
// chooses the format, --out FILE where it goes. Commands print through
// cmd.OutOrStdout(), tables through newTable, records through emit or a
// recordWriter; nothing here knows how the records were fetched.

// Output formats.
const (
	formatTable = "table" // aligned columns, the default
	formatWide  = "wide"  // the table with more columns
	formatJSON  = "json"  // one JSON object per record, one per line
	formatYAML  = "yaml"  // one YAML document per record, each after ---
)

// outputUsage is the -o flag's help, the same on every command.
const outputUsage = "output `FORMAT`: table, wide (more columns), json (one object per line) or yaml (one document per record)"

// outUsage is the --out flag's help, the same on every command.
const outUsage = "write the output to `FILE` (mode 0600, replaced only when the command printed something) instead of standard output"

// outFileAnnotation marks the --out flags that wireOutFiles redirects.
const outFileAnnotation = "lightsout_out_file"

// addOutputFlags adds -o/--output (into *format, default table) and, unless
// the command already has its own --out, --out FILE.
func addOutputFlags(fs *pflag.FlagSet, format, file *string) {
	fs.StringVarP(format, "output", "o", formatTable, outputUsage)
	if fs.Lookup("out") == nil {
		fs.StringVar(file, "out", "", outUsage)
		_ = fs.SetAnnotation("out", outFileAnnotation, []string{"true"})
	}
}

// checkFormat refuses an unknown -o value, naming the ones there are. A
// value that looks like a file name gets the hint that files are --out.
func checkFormat(format string) error {
	switch format {
	case formatTable, formatWide, formatJSON, formatYAML:
		return nil
	}
	if strings.ContainsAny(format, "./") {
		return usageErr("--output %q: want table, wide, json or yaml (-o is the format; write a file with --out %s)", format, format)
	}
	return usageErr("--output %q: want table, wide, json or yaml", format)
}

// structuredFormat reports whether format prints records (json, yaml)
// rather than a table.
func structuredFormat(format string) bool { return format == formatJSON || format == formatYAML }

// recordWriter writes records one at a time as JSON lines or YAML
// documents, so streaming commands (check, diag, events --follow) print each
// record as it comes.
type recordWriter struct {
	format string
	w      io.Writer
	jenc   *json.Encoder
}

func newRecordWriter(format string, w io.Writer) *recordWriter {
	r := &recordWriter{format: format, w: w}
	if format != formatYAML {
		r.jenc = json.NewEncoder(w)
		r.jenc.SetEscapeHTML(false)
	}
	return r
}

func (r *recordWriter) write(v any) error {
	if r.jenc != nil {
		return r.jenc.Encode(v)
	}
	b, err := yamlDocument(v)
	if err != nil {
		return err
	}
	_, err = r.w.Write(b)
	return err
}

// emit writes records in format (json or yaml).
func emit[T any](format string, w io.Writer, vs ...T) error {
	r := newRecordWriter(format, w)
	for _, v := range vs {
		if err := r.write(v); err != nil {
			return err
		}
	}
	return nil
}

// yamlDocument renders v as one YAML document starting with ---, with the
// field names and order of its JSON form (so -o yaml and -o json name
// every field the same way).
func yamlDocument(v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var n yaml.Node
	if err := yaml.Unmarshal(j, &n); err != nil {
		return nil, fmt.Errorf("yaml from json: %w", err)
	}
	blockStyle(&n)
	var b bytes.Buffer
	b.WriteString("---\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// blockStyle clears the flow and quoting styles the JSON text gave the
// nodes; the encoder quotes what needs quoting (a string "123" stays a
// string).
func blockStyle(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// newTable starts a table. A header starting with "+" is a wide column:
// shown (without the +) only with -o wide; rows give every cell and the
// table drops the hidden ones.
func newTable(w io.Writer, format string, header ...string) *tabWriter {
	wide := format == formatWide
	t := &tabWriter{}
	var shown []string
	for _, h := range header {
		hide := strings.HasPrefix(h, "+") && !wide
		t.hide = append(t.hide, hide)
		if !hide {
			shown = append(shown, strings.TrimPrefix(h, "+"))
		}
	}
	t.start(w, shown)
	return t
}

// wireOutFiles makes --out FILE work on every command under c that has it:
// the command's output goes to FILE instead of standard output.
func wireOutFiles(c *cobra.Command) {
	for _, sub := range c.Commands() {
		wireOutFiles(sub)
	}
	if c.RunE == nil {
		return
	}
	fl := c.Flags().Lookup("out")
	if fl == nil {
		fl = c.InheritedFlags().Lookup("out")
	}
	if fl == nil || fl.Annotations[outFileAnnotation] == nil {
		return
	}
	run := c.RunE
	c.RunE = func(cmd *cobra.Command, args []string) error {
		path := cmd.Flags().Lookup("out").Value.String()
		if path == "" || path == "-" {
			return run(cmd, args)
		}
		of := &outFile{path: path}
		// A stream that runs until Ctrl-C (events --follow) is written
		// to FILE as it comes, for tail -f.
		if fl := cmd.Flags().Lookup("follow"); fl != nil && fl.Value.String() == "true" {
			of.direct = true
		}
		cmd.SetOut(of)
		err := run(cmd, args)
		cmd.SetOut(nil)
		if ferr := of.finish(err == nil); ferr != nil && err == nil {
			err = &exitError{code: 1, err: fmt.Errorf("--out %s: %w", path, ferr)}
		}
		return err
	}
}

// outFile is --out FILE: written to a temporary file beside FILE and
// renamed over it at the end, so FILE is replaced whole or not at all. A
// command that fails before printing anything leaves FILE as it was.
type outFile struct {
	path   string
	direct bool // write FILE itself (a stream that never ends)
	f      *os.File
	err    error
	wrote  bool
}

func (o *outFile) Write(p []byte) (int, error) {
	if o.f == nil && o.err == nil {
		if o.direct {
			o.f, o.err = os.OpenFile(o.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		} else {
			o.f, o.err = os.CreateTemp(filepath.Dir(o.path), "."+filepath.Base(o.path)+".tmp*")
		}
	}
	if o.err != nil {
		return 0, o.err
	}
	o.wrote = o.wrote || len(p) > 0
	n, err := o.f.Write(p)
	if err != nil && o.err == nil {
		o.err = err
	}
	return n, err
}

// finish renames the file into place when the command succeeded or printed
// something (a check that found failures still printed its results), else
// removes it.
func (o *outFile) finish(ok bool) error {
	if o.f == nil && o.err == nil && ok {
		_, _ = o.Write(nil) // an empty result is an empty file
	}
	if o.f == nil {
		return o.err
	}
	tmp := o.f.Name()
	cerr := o.f.Close()
	if o.direct {
		return errors.Join(o.err, cerr)
	}
	if o.err != nil || cerr != nil || !(ok || o.wrote) {
		os.Remove(tmp)
		return errors.Join(o.err, cerr)
	}
	if err := os.Rename(tmp, o.path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
