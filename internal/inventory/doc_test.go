package inventory

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocExamples parses every YAML and CSV example in docs/inventory.md:
// the documentation's examples must be valid inventories.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile("../../docs/inventory.md")
	if err != nil {
		t.Skipf("docs not found: %v", err)
	}
	blocks := regexp.MustCompile("(?s)```(yaml|csv)\n(.*?)```").FindAllStringSubmatch(string(doc), -1)
	if len(blocks) < 3 {
		t.Fatalf("found %d examples", len(blocks))
	}
	for _, b := range blocks {
		format := YAML
		if b[1] == "csv" {
			format = CSV
		}
		if _, err := Parse(strings.NewReader(b[2]), format, "docs/inventory.md"); err != nil {
			t.Errorf("example does not parse: %v\n%s", err, b[2])
		}
	}
}
