package inventory

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FieldError is one problem in an inventory, positioned for the operator.
// Fields that do not apply are empty (Line 0 when unknown).
type FieldError struct {
	Source  string // file name as given to Load or Parse
	Line    int    // 1-based line in Source; 0 when unknown
	Machine string // the machine's name as written, when it has one
	// Enclosure is the name of the entry in enclosures: the problem is in,
	// when it has one; a machine's problems leave it empty even when the
	// machine names an enclosure.
	Enclosure string
	Field     string // field or column name ("defaults.port" for YAML defaults)
	Value     string // the offending value as written; never a password
	Reason    string // what is wrong, in words
}

// maxValueLen caps how much of a value an error message quotes.
const maxValueLen = 64

// Error renders the problem as one line, for example
//
//	fleet.csv:12: machine "node-7": field "port": "99999" is not a port (1-65535)
//	fleet.yaml:4: enclosure "chassis-1": field "slots": "65" is not a number of slots (1-64)
func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.Source != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.Source, e.Line)
	case e.Source != "":
		fmt.Fprintf(&b, "%s: ", e.Source)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Machine != "" {
		fmt.Fprintf(&b, "machine %s: ", quote(e.Machine))
	}
	if e.Enclosure != "" {
		fmt.Fprintf(&b, "enclosure %s: ", quote(e.Enclosure))
	}
	if e.Field != "" {
		fmt.Fprintf(&b, "field %s: ", quote(e.Field))
	}
	if e.Value != "" {
		b.WriteString(quote(e.Value))
		b.WriteByte(' ')
	}
	b.WriteString(e.Reason)
	return b.String()
}

// quote is %q of s, shortened so that one message stays one readable line.
func quote(s string) string {
	if utf8.RuneCountInString(s) > maxValueLen {
		r := []rune(s)
		return strconv.Quote(string(r[:maxValueLen])) + "…"
	}
	return strconv.Quote(s)
}

// MaxReported is how many problems Errors.Error lists before summarising
// the rest.
const MaxReported = 20

// Errors is every problem found in one inventory, in line order. Parse and
// Load return it (as error) so an operator can fix a file in one pass;
// errors.As(err, &errs) retrieves it and errors.As(err, &fieldErr) the
// first FieldError.
type Errors []*FieldError

// Error lists up to MaxReported problems, one per line, and says how many
// more were left out.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i == MaxReported {
			fmt.Fprintf(&b, "\n... and %d more %s", len(es)-i, plural(len(es)-i, "problem", "problems"))
			break
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap exposes each FieldError to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// collector gathers problems while parsing and validating.
type collector struct {
	source string
	errs   Errors
}

func (c *collector) add(line int, machine, field, value, reason string) {
	c.errs = append(c.errs, &FieldError{
		Source: c.source, Line: line, Machine: machine,
		Field: field, Value: value, Reason: reason,
	})
}

func (c *collector) addEnclosure(line int, enclosure, field, value, reason string) {
	c.errs = append(c.errs, &FieldError{
		Source: c.source, Line: line, Enclosure: enclosure,
		Field: field, Value: value, Reason: reason,
	})
}

// err is the collected problems sorted by line (stable, so problems on one
// line keep the order they were found in), or nil.
func (c *collector) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	sort.SliceStable(c.errs, func(i, j int) bool { return c.errs[i].Line < c.errs[j].Line })
	return c.errs
}
