package sim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// LoadConfig reads a fleet file (YAML; see docs/simulator.md). A relative
// password_file is resolved against the fleet file's directory. Errors
// name the file, the line and the field.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("fleet file: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return cfg, fmt.Errorf("fleet file %s: %w", path, err)
	}
	if cfg.PasswordFile != "" && !filepath.IsAbs(cfg.PasswordFile) {
		cfg.PasswordFile = filepath.Join(filepath.Dir(path), cfg.PasswordFile)
	}
	return cfg, nil
}

// ParseConfig decodes and checks a fleet file. Unknown fields and bad
// values are errors (*FieldError, or several joined) naming the field and
// its line. Defaults are not filled in: [New] does that.
func ParseConfig(data []byte) (Config, error) {
	var cfg Config
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return cfg, &FieldError{Reason: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	if len(root.Content) == 0 {
		return cfg, &FieldError{Reason: "the file is empty (want at least \"count: N\")"}
	}
	if root.Content[0].Kind != yaml.MappingNode {
		return cfg, &FieldError{Line: root.Content[0].Line, Reason: "the top level must be a mapping of fields (count, seed, ...)"}
	}
	paths := map[string]int{}  // field path → line
	byLine := map[int]string{} // line → first field path on it
	walkYAML(root.Content[0], "", paths, byLine)

	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return cfg, &FieldError{Reason: strings.TrimPrefix(err.Error(), "yaml: ")}
		}
		var errs []error
		for _, msg := range te.Errors {
			errs = append(errs, typeError(msg, byLine))
		}
		return cfg, errors.Join(errs...)
	}
	probe := cfg
	if _, err := validate(&probe); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			fe.Line = lineOf(fe.Field, paths)
		}
		return cfg, err
	}
	return cfg, nil
}

var (
	lineRE    = regexp.MustCompile(`^line (\d+): (.*)$`)
	unknownRE = regexp.MustCompile(`^field (\S+) not found in type (\S+)$`)
)

// typeError turns a yaml.v3 decoding message into a FieldError.
func typeError(msg string, byLine map[int]string) error {
	m := lineRE.FindStringSubmatch(msg)
	if m == nil {
		return &FieldError{Reason: msg}
	}
	line, _ := strconv.Atoi(m[1])
	fe := &FieldError{Line: line, Field: byLine[line], Reason: m[2]}
	if u := unknownRE.FindStringSubmatch(m[2]); u != nil {
		fe.Reason = "unknown field"
		if known := knownFields[u[2]]; known != "" {
			fe.Reason += " (known: " + known + ")"
		}
	} else if strings.HasPrefix(m[2], "cannot unmarshal ") {
		fe.Reason = "bad value: " + strings.TrimPrefix(m[2], "cannot unmarshal ")
	}
	return fe
}

// knownFields lists the fields of each decoded type, for "unknown field"
// hints.
var knownFields = map[string]string{
	"sim.Config":          yamlFields(Config{}),
	"sim.Faults":          yamlFields(Faults{}),
	"sim.Vendor":          yamlFields(Vendor{}),
	"sim.EnclosureConfig": yamlFields(EnclosureConfig{}),
	"sim.Accounts":        yamlFields(Accounts{}),
}

// yamlFields lists a struct's YAML field names, sorted.
func yamlFields(v any) string {
	t := reflect.TypeOf(v)
	var names []string
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// walkYAML records the line of every mapping key, by dotted path.
func walkYAML(n *yaml.Node, prefix string, paths map[string]int, byLine map[int]string) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if prefix != "" {
				p = prefix + "." + k.Value
			}
			paths[p] = k.Line
			if _, ok := byLine[k.Line]; !ok {
				byLine[k.Line] = p
			}
			walkYAML(v, p, paths, byLine)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", prefix, i)
			paths[p] = c.Line
			if _, ok := byLine[c.Line]; !ok {
				byLine[c.Line] = p
			}
			walkYAML(c, p, paths, byLine)
		}
	}
}

// lineOf finds the line of field, or of its nearest parent.
func lineOf(field string, paths map[string]int) int {
	for f := field; f != ""; {
		if l, ok := paths[f]; ok {
			return l
		}
		i := strings.LastIndexAny(f, ".[")
		if i < 0 {
			break
		}
		f = f[:i]
	}
	return 0
}
