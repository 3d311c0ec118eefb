// Package hostlist expands host lists the way FreeIPMI and pdsh users
// write them: comma-separated names, each with bracketed numeric ranges
// ("bmc-[001-100],spare-1", "node[1-3,7]", "rack[1-2]-bmc[01-16]"). A
// range's low bound fixes the width of every number it makes when it is
// written with a leading zero (001-100 → 001 … 100), as pdsh does. The
// expansion is bounded (Max); a bad list is refused with its position.
package hostlist

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultMax bounds an expansion unless the caller sets another.
const DefaultMax = 100000

// Error is a bad host list: Pos is the 1-based byte position in the list
// of the character in question.
type Error struct {
	List   string
	Pos    int
	Reason string
	Err    error // ErrTooMany, or nil
}

func (e *Error) Error() string {
	return fmt.Sprintf("host list %q, position %d: %s", e.List, e.Pos, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

func tooMany(list string, pos, max int) *Error {
	return &Error{list, pos, fmt.Sprintf("expands to more than %d names (the limit)", max), ErrTooMany}
}

// ErrTooMany is wrapped by the error of a list that expands to more than
// the bound.
var ErrTooMany = errors.New("host list too long")

// Has reports whether s is written as a host list (a comma or a bracket)
// rather than as one name.
func Has(s string) bool { return strings.ContainsAny(s, ",[]") }

// Expand expands list into names, in order, each once; at most max names
// (max ≤ 0: DefaultMax).
func Expand(list string, max int) ([]string, error) {
	if max <= 0 {
		max = DefaultMax
	}
	var out []string
	seen := map[string]bool{}
	start, depth := 0, 0
	for i := 0; i <= len(list); i++ {
		if i < len(list) {
			switch list[i] {
			case '[':
				depth++
				continue
			case ']':
				depth--
				continue
			case ',':
				if depth > 0 {
					continue
				}
			default:
				continue
			}
		}
		term := list[start:i]
		if strings.TrimSpace(term) == "" {
			return nil, &Error{list, i + 1, "empty name (two commas, or one at an end)", nil}
		}
		names, err := term1(list, start, term, max-len(out), max)
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
		start = i + 1
	}
	return out, nil
}

// term1 expands one comma-separated term at offset off of list, making at
// most room names.
func term1(list string, off int, term string, room, max int) ([]string, error) {
	names := []string{""}
	for i := 0; i < len(term); {
		c := term[i]
		switch {
		case c == ']':
			return nil, &Error{list, off + i + 1, "']' without '['", nil}
		case c == ' ' || c == '\t':
			return nil, &Error{list, off + i + 1, "a space in a name (separate names with commas)", nil}
		case c != '[':
			j := strings.IndexAny(term[i:], "[] \t")
			if j < 0 {
				j = len(term) - i
			}
			for k := range names {
				names[k] += term[i : i+j]
			}
			i += j
			continue
		}
		end := strings.IndexByte(term[i:], ']')
		if end < 0 {
			return nil, &Error{list, off + i + 1, "'[' without ']'", nil}
		}
		if k := strings.IndexByte(term[i+1:i+end], '['); k >= 0 {
			return nil, &Error{list, off + i + 1 + k + 1, "'[' inside a range", nil}
		}
		nums, err := ranges(list, off+i+1, term[i+1:i+end])
		if err != nil {
			return nil, err
		}
		if len(names)*len(nums) > room {
			return nil, tooMany(list, off+i+1, max)
		}
		next := make([]string, 0, len(names)*len(nums))
		for _, n := range names {
			for _, x := range nums {
				next = append(next, n+x)
			}
		}
		names = next
		i += end + 1
	}
	return names, nil
}

// ranges expands the inside of a bracket ("001-100,7"), which starts at
// position pos-1 of list (pos: the '[' is at pos).
func ranges(list string, pos int, in string) ([]string, error) {
	if in == "" {
		return nil, &Error{list, pos, "empty range '[]'", nil}
	}
	var out []string
	at := pos + 1 // position of in[0]
	for _, part := range strings.Split(in, ",") {
		lo, hi, dash := strings.Cut(part, "-")
		if !dash {
			hi = lo
		}
		lp, hp := at, at+len(lo)+1
		if err := digits(list, lp, lo); err != nil {
			return nil, err
		}
		if err := digits(list, hp, hi); err != nil {
			return nil, err
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil {
			return nil, &Error{list, lp, "number too large", nil}
		}
		if b < a {
			return nil, &Error{list, lp, fmt.Sprintf("range %s-%s runs backwards", lo, hi), nil}
		}
		if b-a >= DefaultMax {
			return nil, tooMany(list, lp, DefaultMax)
		}
		width := 0
		if len(lo) > 1 && lo[0] == '0' {
			width = len(lo)
		}
		for n := a; n <= b; n++ {
			out = append(out, fmt.Sprintf("%0*d", width, n))
		}
		at += len(part) + 1
	}
	return out, nil
}

func digits(list string, pos int, s string) error {
	if s == "" {
		return &Error{list, pos, "a range needs a number on each side of '-'", nil}
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return &Error{list, pos + i, fmt.Sprintf("%q in a range: only digits, '-' and ','", s[i]), nil}
		}
	}
	return nil
}
