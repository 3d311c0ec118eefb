package markdown

import "testing"

func TestTable(t *testing.T) {
	got := Table([]string{"tool", "hosts/s"}, [][]string{{"lightsout check", "1200"}, {"ipmipower", "95"}, {"short"}}, []bool{false, true})
	want := "" +
		"| tool            | hosts/s |\n" +
		"| --------------- | ------: |\n" +
		"| lightsout check |    1200 |\n" +
		"| ipmipower       |      95 |\n" +
		"| short           |         |\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}
