package inventory

import "strings"

// A fast path for the common shape of YAML inventory.
//
// Walking a yaml.v3 node tree costs some 15-20 µs per machine, which for a
// fleet of ten thousand is a noticeable share of a whole `lightsout check`.
// Nearly every large inventory is machine-written (by [WriteYAML], e.g.
// `lightsout sim --export-inventory`) and has one simple shape:
//
//	enclosures:
//	  - name: c1
//	    address: 10.0.9.1
//	    slots: 16
//	machines:
//	  - name: bmc-00001
//	    address: 127.201.0.1
//	    port: 623
//	    tags: [gpu, rack 1]
//
// parseYAMLFast reads exactly that shape, a line at a time, and produces
// the very entries parseYAML would (values, lines, given fields), so that
// validateAll, and therefore Parse's result and error messages, cannot
// tell the two apart. It is deliberately conservative: on anything else,
// down to a comment, a quote, a tab, a trailing space, a duplicate or
// unknown field, a null or a value yaml.v3 might resolve to something
// other than the plain text or the decimal number it looks like, it gives
// up and Parse falls back to parseYAML, which handles all of YAML and
// reports problems. In particular it accepts no input on which parseYAML
// would report a problem, so it never has to produce one.

// parseYAMLFast parses data if it has the simple shape described above and
// returns its machines and enclosures with ok set, or ok false (and
// nothing else) if it does not.
func parseYAMLFast(data []byte) (entries []*entry, encs []*encEntry, ok bool) {
	if len(data) == 0 {
		return nil, nil, false
	}
	// One string for the whole input: every value below is a substring of
	// it, which saves an allocation per value (at the price of keeping the
	// input's text alive as long as any of its values is).
	p := &fastParser{src: string(data)}
	var seenMachines, seenEnclosures bool
	text, _, more := p.nextNonBlank()
	if !more {
		return nil, nil, false
	}
	for more {
		switch text {
		case "machines:":
			if seenMachines {
				return nil, nil, false
			}
			seenMachines = true
			entries = make([]*entry, 0, p.estimateItems())
			text, more, ok = p.list(func(itemLine, index int) (record, *meta) {
				e := newEntry(itemLine, index)
				entries = append(entries, e)
				return &e.m, &e.meta
			}, machineField)
		case "enclosures:":
			if seenEnclosures {
				return nil, nil, false
			}
			seenEnclosures = true
			text, more, ok = p.list(func(itemLine, index int) (record, *meta) {
				e := newEncEntry(itemLine, index)
				encs = append(encs, e)
				return &e.e, &e.meta
			}, enclosureField)
		default:
			ok = false
		}
		if !ok {
			return nil, nil, false
		}
	}
	return entries, encs, true
}

// fieldKind is how the fast path reads a field's value.
type fieldKind uint8

const (
	unknownField fieldKind = iota
	textKind
	intKind
	boolKind
	listKind
)

// machineField and enclosureField give a field name's kind and a bit of
// its own (unknownField, 0 for a name that is not a field), derived from
// fieldNames, enclosureFieldNames and the record methods.
var (
	machineField   = fieldTable(fieldNames, &Machine{})
	enclosureField = fieldTable(enclosureFieldNames, &Enclosure{})
)

// fieldTable derives the kind of each of names from r's record methods,
// and gives each name the bit of its place in names (at most 32).
func fieldTable(names []string, r record) func(string) (fieldKind, uint32) {
	type spec struct {
		kind fieldKind
		bit  uint32
	}
	t := make(map[string]spec, len(names))
	for i, name := range names {
		k := unknownField
		switch {
		case r.textField(name) != nil:
			k = textKind
		case r.intField(name) != nil:
			k = intKind
		case r.boolField(name) != nil:
			k = boolKind
		case r.listField(name) != nil:
			k = listKind
		}
		t[name] = spec{k, 1 << i}
	}
	return func(name string) (fieldKind, uint32) {
		s, ok := t[name]
		if !ok {
			return unknownField, 0
		}
		return s.kind, s.bit
	}
}

// fastParser reads src a line at a time.
type fastParser struct {
	src  string
	pos  int // offset of the next line
	line int // number of the line last returned (1-based)
}

// next returns the next line without its "\n", its number, and whether
// there was one.
func (p *fastParser) next() (string, int, bool) {
	if p.pos >= len(p.src) {
		return "", p.line, false
	}
	rest := p.src[p.pos:]
	p.line++
	if i := strings.IndexByte(rest, '\n'); i >= 0 {
		p.pos += i + 1
		return rest[:i], p.line, true
	}
	p.pos = len(p.src)
	return rest, p.line, true
}

// nextNonBlank is next, skipping empty lines. A line of only spaces is not
// skipped (and so is refused by the caller).
func (p *fastParser) nextNonBlank() (string, int, bool) {
	for {
		text, line, ok := p.next()
		if !ok || text != "" {
			return text, line, ok
		}
	}
}

// estimateItems guesses how many list items follow, to size the slice.
func (p *fastParser) estimateItems() int {
	n := strings.Count(p.src[p.pos:], "- ")
	if n > 1<<20 {
		n = 1 << 20
	}
	return n
}

// list reads the items of a top-level list, each a block mapping whose
// first field is on the "- " line and whose other fields are on lines of
// their own, indented two more than the "-":
//
//	machines:
//	  - name: a
//	    address: 10.0.0.1
//
// The "-" may be indented any number of spaces (none included), the same
// for every item. newItem is called for each item (its line and 1-based
// index) and returns where its fields go. list returns the line that ends
// the list (a top-level key) and whether there is one, with ok false if
// the list is not in the simple shape.
func (p *fastParser) list(newItem func(line, index int) (record, *meta), field func(string) (fieldKind, uint32)) (text string, more, ok bool) {
	dash := -1 // indentation of the "-"
	var (
		r    record
		mt   *meta
		n    int    // items so far
		seen uint32 // the bits of the item's fields so far
	)
	for {
		var line int
		text, line, more = p.nextNonBlank()
		if !more {
			break
		}
		indent := 0
		for indent < len(text) && text[indent] == ' ' {
			indent++
		}
		rest := text[indent:]
		isItem := strings.HasPrefix(rest, "- ")
		if indent == 0 && !isItem {
			break // the next top-level key
		}
		if dash < 0 {
			if !isItem {
				return "", false, false
			}
			dash = indent
		}
		switch {
		case isItem && indent == dash:
			n++
			r, mt = newItem(line, n)
			seen = 0
			rest = rest[2:]
		case !isItem && indent == dash+2 && r != nil:
		default:
			return "", false, false
		}
		if !setField(r, mt, &seen, rest, line, field) {
			return "", false, false
		}
	}
	if n == 0 {
		return "", false, false // an empty list or null: leave it to yaml.v3
	}
	return text, more, true
}

// setField reads one "name: value" line into r and mt as parseYAML's
// fields would, or reports false if the line is not in the simple shape
// or would make parseYAML report a problem. seen holds the bits (from
// field) of the record's fields so far, to refuse duplicates.
func setField(r record, mt *meta, seen *uint32, text string, line int, field func(string) (fieldKind, uint32)) bool {
	i := strings.Index(text, ": ")
	if i < 0 {
		return false
	}
	name, value := text[:i], text[i+2:]
	k, bit := field(name)
	if k == unknownField || *seen&bit != 0 {
		return false
	}
	*seen |= bit
	switch k {
	case textKind:
		if !plainText(value, false) {
			return false
		}
		*r.textField(name) = value
	case intKind:
		n, ok := plainInt(value)
		if !ok {
			return false
		}
		*r.intField(name) = n
	case boolKind:
		b, ok := parseBool(value) // true, yes, false or no, in any case
		if !ok {
			return false
		}
		*r.boolField(name) = b
	case listKind:
		items, ok := flowList(value)
		if !ok {
			return false
		}
		var lines []int
		if len(items) > 0 {
			lines = make([]int, len(items))
			for j := range lines {
				lines[j] = line
			}
		}
		*r.listField(name) = items
		if name == "tags" {
			mt.tagLines = lines
		}
	}
	mt.given[name] = true
	mt.lines[name] = line
	return true
}

// Classes of the bytes a plain text may hold, for plainText.
const (
	plainStart = 1 << iota // may start a plain text
	plainInner             // may follow its first byte
)

// plainClass is the class bits of each byte: letters, digits, '.', '/'
// and '_' anywhere; '-', '@', '+', '(' and ')' after the first byte.
// (' ', ':' and ',' are handled apart.) Anything else, including every
// YAML indicator, control character and non-ASCII byte, is refused.
var plainClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		switch b := byte(c); {
		case isAlnum(b), b == '.', b == '/', b == '_':
			t[c] = plainStart | plainInner
		case b == '-', b == '@', b == '+', b == '(', b == ')':
			t[c] = plainInner
		}
	}
	return t
}()

// plainText reports whether s is a plain scalar that yaml.v3 reads as the
// non-null text s itself: printable ASCII from a small, safe set (see
// plainClass), spaces inside but not at the end, ':' and ',' only when
// not followed by a space nor at the end, none of them in a flow list
// (flow set), and not null. It is stricter than YAML needs, on purpose.
// The text's YAML type does not matter otherwise: parseYAML takes a text
// field's value as written even when yaml.v3 resolves it to a number, a
// boolean or a timestamp.
func plainText(s string, flow bool) bool {
	if s == "" || plainClass[s[0]]&plainStart == 0 {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if plainClass[c]&plainInner != 0 {
			continue
		}
		switch c {
		case ' ':
			if i == len(s)-1 {
				return false // trailing white space
			}
		case ':', ',':
			if flow || i == len(s)-1 || s[i+1] == ' ' {
				return false
			}
		default:
			return false
		}
	}
	switch s {
	case "null", "Null", "NULL":
		return false
	}
	return true
}

// plainInt reads a plain decimal integer that yaml.v3 resolves to the same
// !!int: "0", or an optional '-' and up to 9 digits without a leading
// zero (so that it fits an int everywhere).
func plainInt(s string) (int, bool) {
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	if s == "" || len(s) > 9 || (s[0] == '0' && (len(s) > 1 || neg)) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// flowList reads a one-line flow sequence of plain texts as WriteYAML
// writes tags: "[a, b c, d]", or "[]" (nil).
func flowList(s string) ([]string, bool) {
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return nil, false
	}
	s = s[1 : len(s)-1]
	if s == "" {
		return nil, true
	}
	items := make([]string, 0, strings.Count(s, ", ")+1)
	for {
		item, rest, found := strings.Cut(s, ", ")
		if !plainText(item, true) {
			return nil, false
		}
		items = append(items, item)
		if !found {
			return items, true
		}
		s = rest
	}
}
