package inventory

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

var utf8BOM = []byte("\xef\xbb\xbf")

func parseCSV(c *collector, data []byte) []*entry {
	// Spreadsheets like to start a UTF-8 export with a byte order mark.
	data = bytes.TrimPrefix(data, utf8BOM)
	r := csv.NewReader(bytes.NewReader(data))
	r.Comment = '#'
	r.FieldsPerRecord = -1 // checked below, so one bad row does not stop the rest
	r.TrimLeadingSpace = true
	var (
		header []string // field name of each column
		out    []*entry
	)
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// The reader cannot be trusted to resynchronise after a
			// syntax error (an open quote swallows the rest of the file),
			// so stop here; rows before it are still validated.
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				c.add(pe.Line, "", "", "", fmt.Sprintf("CSV syntax error (column %d): %v", pe.Column, pe.Err))
			} else {
				c.add(0, "", "", "", "CSV: "+err.Error())
			}
			return out
		}
		line, _ := r.FieldPos(0)
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		if len(rec) == 1 && rec[0] == "" {
			continue // a line of white space
		}
		if header == nil {
			if header = csvHeader(c, line, rec); header == nil {
				return nil
			}
			continue
		}
		if len(rec) != len(header) {
			c.add(line, "", "", "", fmt.Sprintf("row has %d %s, the header has %d",
				len(rec), plural(len(rec), "column", "columns"), len(header)))
			continue
		}
		e := newEntry(line, len(out)+1)
		var probs []problem
		for i, col := range header {
			v := rec[i]
			if v == "" {
				continue
			}
			e.given[col] = true
			e.lines[col] = line
			if t := e.m.textField(col); t != nil {
				*t = v
				continue
			}
			if l := e.m.listField(col); l != nil {
				*l = splitTags(v)
				continue
			}
			if b := e.m.boolField(col); b != nil {
				x, ok := parseBool(v)
				if !ok {
					probs = append(probs, problem{line, col, v, "is not true or false"})
					e.skip[col] = true
					continue
				}
				*b = x
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil {
				probs = append(probs, problem{line, col, v, "is not a whole number"})
				e.skip[col] = true
				continue
			}
			*e.m.intField(col) = n
		}
		for _, p := range probs {
			c.add(p.line, e.m.Name, p.field, p.value, p.reason)
		}
		out = append(out, e)
	}
	if header == nil {
		c.add(0, "", "", "", "no header row; the first line must name the columns, e.g. name,address,user,password_env")
	}
	return out
}

// splitTags splits a CSV tags cell at ';', trimming white space around
// each tag and dropping empty pieces ("a; b;" is a and b). No tags is nil.
func splitTags(cell string) []string {
	var tags []string
	for _, t := range strings.Split(cell, tagSeparator) {
		if t = strings.TrimSpace(t); t != "" {
			tags = append(tags, t)
		}
	}
	return tags
}

// csvHeader maps the header row to field names (case insensitive), or
// reports what is wrong with it and returns nil.
func csvHeader(c *collector, line int, rec []string) []string {
	header := make([]string, len(rec))
	ok := true
	for i, name := range rec {
		col := strings.ToLower(name)
		switch {
		case col == "":
			c.add(line, "", "", "", fmt.Sprintf("header column %d has no name", i+1))
			ok = false
		case !slices.Contains(fieldNames, col):
			c.add(line, "", name, "", "unknown column (known: "+strings.Join(fieldNames, ", ")+
				"; the first line must be a header naming the columns)")
			ok = false
		case slices.Contains(header[:i], col):
			c.add(line, "", name, "", "column given twice")
			ok = false
		}
		header[i] = col
	}
	if !ok {
		return nil
	}
	for _, req := range []string{"name", "address"} {
		if !slices.Contains(header, req) {
			c.add(line, "", req, "", "required column missing from the header")
			ok = false
		}
	}
	if !ok {
		return nil
	}
	return header
}

// WriteCSV writes inv's machines as a CSV inventory: a header naming
// every column, in the order name, guid, address, port, user, protocol,
// password_file, password_env, cipher_suite, privilege, enclosure, slot,
// group, role, tags, spare, then one row per machine (0 and false written
// as an empty cell, tags joined with ';', privilege levels in their
// canonical spelling). CSV has no enclosures section: inv.Enclosures are
// validated but not written. The output parses back to the same machines.
// An inventory failing [Inventory.Validate] is refused.
func WriteCSV(w io.Writer, inv *Inventory) error {
	if err := inv.Validate(); err != nil {
		return err
	}
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	if err := cw.Write(fieldNames); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	row := make([]string, len(fieldNames))
	for i := range inv.Machines {
		m := canonical(inv.Machines[i])
		for j, f := range fieldNames {
			row[j] = m.fieldValue(f)
			if p := m.intField(f); p != nil && *p == 0 {
				row[j] = ""
			}
			if p := m.boolField(f); p != nil && !*p {
				row[j] = ""
			}
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("inventory: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}
