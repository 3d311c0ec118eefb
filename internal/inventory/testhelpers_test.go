package inventory

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// withoutLines is ms with every Line zeroed, for comparing machines parsed
// from different files.
func withoutLines(ms []Machine) []Machine {
	out := slices.Clone(ms)
	for i := range out {
		out[i].Line = 0
	}
	return out
}

func parseString(t *testing.T, format Format, src string) (*Inventory, error) {
	t.Helper()
	name := "fleet.yaml"
	if format == CSV {
		name = "fleet.csv"
	}
	inv, err := Parse(strings.NewReader(src), format, name)
	if err != nil && inv != nil {
		t.Fatalf("Parse returned both an inventory and an error: %v", err)
	}
	return inv, err
}

func mustParse(t *testing.T, format Format, src string) *Inventory {
	t.Helper()
	inv, err := parseString(t, format, src)
	if err != nil {
		t.Fatalf("Parse(%v):\n%s\nerror: %v", format, src, err)
	}
	return inv
}

// fieldErrors unpacks err, failing the test unless it is an Errors.
func fieldErrors(t *testing.T, err error) Errors {
	t.Helper()
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v (%T) is not an inventory.Errors", err, err)
	}
	return errs
}

// wantError asserts that err holds a FieldError for field at line.
func wantError(t *testing.T, err error, line int, field string) *FieldError {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one for field %q at line %d", field, line)
	}
	for _, fe := range fieldErrors(t, err) {
		if fe.Line == line && fe.Field == field {
			return fe
		}
	}
	t.Fatalf("no error for field %q at line %d in:\n%v", field, line, err)
	return nil
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
