package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// The YAML document is walked as a yaml.Node tree rather than decoded into
// structs: that way every problem (unknown field, bad number, wrong shape)
// is reported with its own line and machine, and all of them are reported,
// not just the first.

type yamlParser struct {
	c *collector
	// reported holds key nodes already reported as unknown, so an unknown
	// field in an anchor merged into many machines is reported once.
	reported map[*yaml.Node]bool
}

// problem is a parse problem held until the machine's name is known.
type problem struct {
	line                 int
	field, value, reason string
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserErrors are the messages of yaml.v3's parser (as opposed to its
// scanner). yaml.v3 v3.0.1 reports their line 0-based (and leaves the line
// out when it is the first); scanner errors are reported 1-based.
var yamlParserErrors = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

// syntaxError reports a yaml.v3 parse error at the line where the problem
// is. yaml.v3 often names the line where the enclosing block starts (and
// v3.0.1 gives parser errors 0-based), so the line is found by parsing
// prefixes of the input: the first line whose inclusion produces the very
// same error. Bad characters and bad UTF-8 are located directly.
func (p *yamlParser) syntaxError(err error, data []byte) {
	full := err.Error()
	msg := strings.TrimPrefix(full, "yaml: ")
	yline := 0 // yaml.v3's own line, made 1-based
	if m := yamlLineRE.FindStringSubmatch(full); m != nil {
		yline, _ = strconv.Atoi(m[1])
		msg = m[2]
		if yamlParserErrors[msg] {
			yline++
		}
	}
	line := yline
	if off := firstBadYAMLChar(data); yline == 0 && off >= 0 {
		line = 1 + bytes.Count(data[:off], []byte("\n"))
	} else if k := firstFailingLine(data, full); k > 0 {
		line = k
	}
	reason := "YAML syntax error: " + msg
	if yline > 0 && line > yline {
		reason += fmt.Sprintf(" (in the block starting on line %d)", yline)
	}
	p.c.add(line, "", "", "", reason)
}

// firstFailingLine is the smallest k such that the first k lines of data
// fail to decode with exactly the error full, or 0. It binary-searches, so
// it costs a handful of parses even for a long file.
func firstFailingLine(data []byte, full string) int {
	var ends []int // ends[k-1] is the offset just past line k
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	same := func(k int) bool {
		err := decodeYAML(data[:ends[k-1]], nil)
		return err != nil && err.Error() == full
	}
	lo, hi := 1, len(ends)
	if !same(hi) {
		return 0
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if same(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// errExtraDocument is returned by decodeYAML for a second, non-empty document.
var errExtraDocument = errors.New("second YAML document")

// decodeYAML decodes the first document of data into doc (nil when only
// the error matters) and checks that any further documents are empty ("---"
// at the end is fine). It returns yaml.v3's error, io.EOF for no document,
// or errExtraDocument with doc set to the extra document's content.
func decodeYAML(data []byte, doc *yaml.Node) error {
	if doc == nil {
		doc = new(yaml.Node)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(doc); err != nil {
		return err
	}
	for {
		var extra yaml.Node
		err := dec.Decode(&extra)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(extra.Content) > 0 && !isNull(extra.Content[0]) {
			*doc = *extra.Content[0]
			return errExtraDocument
		}
	}
}

// firstBadYAMLChar is the offset of the first byte that is not valid UTF-8
// or is a character YAML does not allow, or -1.
func firstBadYAMLChar(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		ok := r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0x7e) || r == 0x85 ||
			(r >= 0xa0 && r <= 0xd7ff) || (r >= 0xe000 && r <= 0xfffd) || (r >= 0x10000 && r <= 0x10ffff)
		if (r == utf8.RuneError && size <= 1) || !ok {
			return i
		}
		i += size
	}
	return -1
}

// parseYAML reads a YAML inventory of any shape into entries, reporting
// problems to c. Parse tries parseYAMLFast (yamlfast.go) first, which
// must produce exactly what this does on the inputs it accepts.
func parseYAML(c *collector, data []byte) ([]*entry, []*encEntry) {
	p := &yamlParser{c: c, reported: map[*yaml.Node]bool{}}
	var doc yaml.Node
	switch err := decodeYAML(data, &doc); {
	case errors.Is(err, io.EOF): // no document at all
		return nil, nil
	case errors.Is(err, errExtraDocument):
		c.add(doc.Line, "", "", "", "a second YAML document; put every machine in one machines: list")
		return nil, nil
	case err != nil:
		p.syntaxError(err, data)
		return nil, nil
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := resolve(doc.Content[0])
	if isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		c.add(root.Line, "", "", "", "the top level must be a mapping with a machines: list (and optionally defaults: and enclosures:)")
		return nil, nil
	}
	var defaults, machines, enclosures *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := resolve(root.Content[i]), root.Content[i+1]
		switch {
		case k.Kind != yaml.ScalarNode:
			c.add(k.Line, "", "", "", "a field name must be plain text")
		case k.Value == "defaults" && defaults == nil:
			defaults = v
		case k.Value == "machines" && machines == nil:
			machines = v
		case k.Value == "enclosures" && enclosures == nil:
			enclosures = v
		case k.Value == "defaults" || k.Value == "machines" || k.Value == "enclosures":
			c.add(k.Line, "", k.Value, "", "is given twice")
		default:
			c.add(k.Line, "", k.Value, "", "unknown top-level field (want defaults, enclosures or machines)")
		}
	}

	var encs []*encEntry
	for i, item := range p.list(enclosures, "enclosures", "enclosures") {
		if e := p.enclosure(item, i+1); e != nil {
			encs = append(encs, e)
		}
	}
	var def *entry
	if defaults != nil {
		def = p.defaults(resolve(defaults))
	}
	var out []*entry
	for i, item := range p.list(machines, "machines", "machines") {
		if e := p.machine(item, i+1, def); e != nil {
			out = append(out, e)
		}
	}
	return out, encs
}

// list is the items of the top-level list n (nil when n is absent or
// null), or reports that n is not a list and returns nil.
func (p *yamlParser) list(n *yaml.Node, field, what string) []*yaml.Node {
	if n == nil {
		return nil
	}
	n = resolve(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.c.add(n.Line, "", field, "", "must be a list of "+what)
		return nil
	}
	return n.Content
}

// defaults reads and validates the defaults block. Its problems are reported
// once, against "defaults.<field>", not against every machine inheriting them.
func (p *yamlParser) defaults(n *yaml.Node) *entry {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.c.add(n.Line, "", "defaults", "", "must be a mapping of fields")
		return nil
	}
	def := newEntry(n.Line, 0)
	for _, pr := range p.fields(n, defaultNames, &def.m, &def.meta) {
		p.c.add(pr.line, "", "defaults."+pr.field, pr.value, pr.reason)
	}
	for _, f := range defaultNames {
		if !def.given[f] || def.skip[f] {
			continue
		}
		if f == "tags" {
			checkTags(def.m.Tags, func(i int, tag, reason string) {
				def.skip[f] = true
				p.c.add(def.tagLine(i, def.lines[f]), "", "defaults.tags", tag, reason)
			})
			continue
		}
		reason := ""
		if t := def.m.textField(f); t != nil {
			reason = checkText(*t)
		}
		if reason == "" {
			reason = checkDefaultable(f, &def.m)
		}
		if reason != "" {
			def.skip[f] = true
			p.c.add(def.lines[f], "", "defaults."+f, def.m.fieldValue(f), reason)
		}
	}
	if def.m.PasswordFile != "" && def.m.PasswordEnv != "" {
		p.c.add(def.lines["password_env"], "", "defaults.password_env", def.m.PasswordEnv,
			"is set together with password_file (give only one)")
	}
	return def
}

// machine reads one list item into an entry, applying def (may be nil).
func (p *yamlParser) machine(item *yaml.Node, index int, def *entry) *entry {
	line := item.Line
	n := resolve(item)
	if isNull(n) {
		p.c.add(line, "", "", "", fmt.Sprintf("machine #%d is empty", index))
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.c.add(line, "", "", "", fmt.Sprintf("machine #%d must be a mapping of fields (name: ..., address: ...)", index))
		return nil
	}
	e := newEntry(line, index)
	for _, pr := range p.fields(n, fieldNames, &e.m, &e.meta) {
		p.c.add(pr.line, e.m.Name, pr.field, pr.value, pr.reason)
	}
	if def == nil {
		return e
	}
	given := func(f string) bool { return e.given[f] }
	inherit := func(f string) {
		if !def.given[f] {
			return
		}
		e.m.copyField(f, &def.m)
		e.lines[f] = def.lines[f]
		e.skip[f] = true // validated (and reported) as defaults.<f>
		if f == "tags" {
			e.tagLines = def.tagLines
		}
	}
	for _, f := range defaultNames {
		if f != "password_file" && f != "password_env" && !given(f) {
			inherit(f)
		}
	}
	// The password source is one setting: a machine naming either a file
	// or a variable does not inherit the other.
	if !given("password_file") && !given("password_env") {
		inherit("password_file")
		inherit("password_env")
	}
	return e
}

// enclosure reads one item of the enclosures: list. Defaults do not apply
// to enclosures.
func (p *yamlParser) enclosure(item *yaml.Node, index int) *encEntry {
	line := item.Line
	n := resolve(item)
	if isNull(n) {
		p.c.add(line, "", "", "", fmt.Sprintf("enclosure #%d is empty", index))
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.c.add(line, "", "", "", fmt.Sprintf("enclosure #%d must be a mapping of fields (name: ..., address: ..., slots: ...)", index))
		return nil
	}
	e := newEncEntry(line, index)
	for _, pr := range p.fields(n, enclosureFieldNames, &e.e, &e.meta) {
		p.c.addEnclosure(pr.line, e.e.Name, pr.field, pr.value, pr.reason)
	}
	return e
}

// fields collects n's fields (following merge keys) into r, recording the
// line of each value in mt.lines and each field given in mt.given.
// allowed lists the field names accepted. A field whose value is null
// counts as not given.
func (p *yamlParser) fields(n *yaml.Node, allowed []string, r record, mt *meta) []problem {
	var probs []problem
	keys, vals := map[string]*yaml.Node{}, map[string]*yaml.Node{}
	p.collect(n, keys, vals, map[*yaml.Node]bool{}, &probs, 0)
	names := make([]string, 0, len(vals))
	for name := range vals {
		names = append(names, name)
	}
	// Walk in file order so problems come out in a stable order.
	slices.SortFunc(names, func(a, b string) int {
		if d := keys[a].Line - keys[b].Line; d != 0 {
			return d
		}
		if d := keys[a].Column - keys[b].Column; d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	for _, name := range names {
		v := vals[name]
		if !slices.Contains(allowed, name) {
			k := keys[name]
			if !p.reported[k] {
				p.reported[k] = true
				probs = append(probs, problem{k.Line, name, "", "unknown field (known: " + strings.Join(allowed, ", ") + ")"})
			}
			continue
		}
		if isNull(v) {
			continue
		}
		mt.given[name] = true
		if l := r.listField(name); l != nil {
			mt.lines[name] = v.Line
			items, lines, pr := yamlStrings(v, name)
			if pr != nil {
				probs = append(probs, *pr)
				mt.skip[name] = true
				continue
			}
			*l = items
			if name == "tags" {
				mt.tagLines = lines
			}
			continue
		}
		if v.Kind != yaml.ScalarNode {
			probs = append(probs, problem{v.Line, name, "", "must be a single value, not a list or mapping"})
			mt.skip[name] = true
			continue
		}
		mt.lines[name] = v.Line
		if t := r.textField(name); t != nil {
			*t = v.Value
			continue
		}
		if b := r.boolField(name); b != nil {
			x, ok := parseBool(v.Value)
			if !ok {
				probs = append(probs, problem{v.Line, name, v.Value, "is not true or false"})
				mt.skip[name] = true
				continue
			}
			*b = x
			continue
		}
		i, ok := yamlInt(v)
		if !ok {
			probs = append(probs, problem{v.Line, name, v.Value, "is not a whole number"})
			mt.skip[name] = true
			continue
		}
		*r.intField(name) = i
	}
	return probs
}

// yamlStrings reads a list of single values (tags) and the line of each,
// or the problem with it. An empty list is nil.
func yamlStrings(v *yaml.Node, field string) ([]string, []int, *problem) {
	if v.Kind != yaml.SequenceNode {
		return nil, nil, &problem{v.Line, field, "", "must be a list (" + field + ": [a, b], or one \"- item\" per line)"}
	}
	var (
		items []string
		lines []int
	)
	for i, it := range v.Content {
		it = resolve(it)
		switch {
		case isNull(it):
			return nil, nil, &problem{it.Line, field, "", fmt.Sprintf("item #%d is empty", i+1)}
		case it.Kind != yaml.ScalarNode:
			return nil, nil, &problem{it.Line, field, "", fmt.Sprintf("item #%d must be a single value, not a list or mapping", i+1)}
		}
		items = append(items, it.Value)
		lines = append(lines, it.Line)
	}
	return items, lines, nil
}

// parseBool reads true or false, also yes or no, in any case.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "true", "yes":
		return true, true
	case "false", "no":
		return false, true
	}
	return false, false
}

// collect gathers n's key/value pairs into vals (and their key nodes into
// keys), keys already present winning: n's own keys first, then those of
// each mapping merged with "<<", in order, as YAML merge keys specify.
func (p *yamlParser) collect(n *yaml.Node, keys, vals map[string]*yaml.Node, visited map[*yaml.Node]bool, probs *[]problem, depth int) {
	if visited[n] {
		return
	}
	visited[n] = true
	if depth > maxMergeDepth {
		*probs = append(*probs, problem{n.Line, "<<", "", fmt.Sprintf("merges nested more than %d deep", maxMergeDepth)})
		return
	}
	own := map[string]bool{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			*probs = append(*probs, problem{k.Line, "", "", "a field name must be plain text"})
			continue
		}
		if k.Value == "<<" && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if own[k.Value] {
			*probs = append(*probs, problem{k.Line, k.Value, "", "is given twice"})
			continue
		}
		own[k.Value] = true
		if _, ok := vals[k.Value]; !ok {
			keys[k.Value], vals[k.Value] = k, v
		}
	}
	for _, m := range merges {
		var list []*yaml.Node
		switch m.Kind {
		case yaml.MappingNode:
			list = []*yaml.Node{m}
		case yaml.SequenceNode:
			list = m.Content
		}
		if len(list) == 0 && m.Kind != yaml.SequenceNode {
			*probs = append(*probs, problem{m.Line, "<<", "", "must merge a mapping or a list of mappings"})
		}
		for _, x := range list {
			x = resolve(x)
			if x.Kind != yaml.MappingNode {
				*probs = append(*probs, problem{x.Line, "<<", "", "must merge a mapping or a list of mappings"})
				continue
			}
			p.collect(x, keys, vals, visited, probs, depth+1)
		}
	}
}

// maxMergeDepth bounds chains of merge keys (a merged mapping that merges
// another...), which real inventories keep to one or two levels.
const maxMergeDepth = 32

// resolve follows aliases to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// yamlInt reads an integer scalar; a quoted number ("623") is accepted too.
func yamlInt(v *yaml.Node) (int, bool) {
	switch v.ShortTag() {
	case "!!int":
		var i int
		if err := v.Decode(&i); err == nil {
			return i, true
		}
	case "!!str":
		if i, err := strconv.Atoi(v.Value); err == nil {
			return i, true
		}
	}
	return 0, false
}

// WriteYAML writes inv as a YAML inventory: an enclosures: list when there
// are enclosures, then a machines: list, fields in the order of the
// structs, empty fields left out, privilege levels in their canonical
// spelling. Defaults are not written; every machine carries its own
// values. The output parses back to the same enclosures and machines. An
// inventory failing [Inventory.Validate] is refused.
func WriteYAML(w io.Writer, inv *Inventory) error {
	if err := inv.Validate(); err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	doc := struct {
		Enclosures []Enclosure `yaml:"enclosures,omitempty"`
		Machines   []Machine   `yaml:"machines"`
	}{Enclosures: inv.Enclosures, Machines: make([]Machine, len(inv.Machines))}
	for i, m := range inv.Machines {
		doc.Machines[i] = canonical(m)
	}
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
