// Package markdown writes the benchmarks' Markdown reports: a report
// printed to stdout as it is written and kept for --out, and aligned
// tables.
package markdown

import (
	"fmt"
	"os"
	"strings"

	"github.com/lightsout/lightsout/bench/internal/progress"
)

// Report is a report being written: every part is printed to stdout at
// once and kept, to be written to a file at the end.
type Report struct {
	b strings.Builder
}

// Printf prints a part of the report and keeps it.
func (r *Report) Printf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	fmt.Print(s)
	r.b.WriteString(s)
}

// String is the report so far.
func (r *Report) String() string { return r.b.String() }

// WriteFile writes the report so far to path and says so on stderr; an
// empty path (no --out) writes nothing.
func (r *Report) WriteFile(path string) error {
	if path == "" {
		return nil
	}
	if err := os.WriteFile(path, []byte(r.b.String()), 0o644); err != nil {
		return err
	}
	progress.Logf("report written to %s", path)
	return nil
}

// Table renders an aligned Markdown table; right says which columns are
// right-aligned.
func Table(hdr []string, rows [][]string, right []bool) string {
	w := make([]int, len(hdr))
	width := func(s string) int { return len([]rune(s)) }
	for i, h := range hdr {
		w[i] = width(h)
	}
	for _, r := range rows {
		for i, c := range r {
			w[i] = max(w[i], width(c))
		}
	}
	pad := func(s string, i int) string {
		p := strings.Repeat(" ", w[i]-width(s))
		if right[i] {
			return p + s
		}
		return s + p
	}
	var sb strings.Builder
	line := func(cells []string) {
		sb.WriteString("|")
		for i := range hdr {
			c := ""
			if i < len(cells) {
				c = cells[i]
			}
			sb.WriteString(" " + pad(c, i) + " |")
		}
		sb.WriteString("\n")
	}
	line(hdr)
	sb.WriteString("|")
	for i := range hdr {
		d := strings.Repeat("-", w[i])
		if right[i] {
			d = d[:len(d)-1] + ":"
		}
		sb.WriteString(" " + d + " |")
	}
	sb.WriteString("\n")
	for _, r := range rows {
		line(r)
	}
	return sb.String()
}
