package audit

import (
	"slices"
	"testing"

	"github.com/lightsout/lightsout/internal/evcode"
	"github.com/lightsout/lightsout/internal/store"
)

func TestDiff(t *testing.T) {
	c0 := cipher0Finding("admin")
	anonFlag, nullLogin := anonymousFinding(SubjectAnonymousFlag), anonymousFinding(SubjectNullLogin)
	none, md2 := weakAuthFinding(SubjectAuthNone), weakAuthFinding(SubjectAuthMD2)
	root := defaultPasswordFinding(Defaults[0], false)
	reworded := c0
	reworded.Message, reworded.Evidence = "other words", "other evidence"
	for _, tc := range []struct {
		name           string
		prev, cur      []Finding
		added, removed []string
		newCodes       []Code
		summary        string
	}{
		{name: "both clean", summary: "no change"},
		{name: "first finding", cur: []Finding{c0}, added: []string{"cipher0_enabled"}, newCodes: []Code{Cipher0Enabled},
			summary: "added cipher0_enabled"},
		{name: "unchanged, order and wording aside", prev: []Finding{none, c0, md2}, cur: []Finding{md2, reworded, none}, summary: "no change"},
		{name: "fixed", prev: []Finding{c0, root}, cur: []Finding{root}, removed: []string{"cipher0_enabled"},
			summary: "removed cipher0_enabled"},
		{name: "one more subject of a known code is drift but no new code", prev: []Finding{none}, cur: []Finding{none, md2},
			added: []string{"weak_auth:md2"}, summary: "added weak_auth:md2"},
		{name: "swap", prev: []Finding{anonFlag, root}, cur: []Finding{nullLogin, c0},
			added: []string{"cipher0_enabled", "anonymous_login:null_login"}, removed: []string{"anonymous_login:anonymous_flag", "default_password:root"},
			newCodes: []Code{Cipher0Enabled},
			summary:  "added cipher0_enabled, anonymous_login:null_login; removed anonymous_login:anonymous_flag, default_password:root"},
		{name: "everything new, codes in catalogue order", cur: []Finding{root, md2, nullLogin, c0},
			added:    []string{"cipher0_enabled", "anonymous_login:null_login", "weak_auth:md2", "default_password:root"},
			newCodes: []Code{Cipher0Enabled, AnonymousLogin, WeakAuth, DefaultPassword},
			summary:  "added cipher0_enabled, anonymous_login:null_login, weak_auth:md2, default_password:root"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Diff(tc.prev, tc.cur)
			if got := Keys(d.Added); !slices.Equal(got, tc.added) {
				t.Errorf("added %v, want %v", got, tc.added)
			}
			if got := Keys(d.Removed); !slices.Equal(got, tc.removed) {
				t.Errorf("removed %v, want %v", got, tc.removed)
			}
			if !slices.Equal(d.NewCodes, tc.newCodes) {
				t.Errorf("new codes %v, want %v", d.NewCodes, tc.newCodes)
			}
			if d.Empty() != (len(tc.added)+len(tc.removed) == 0) {
				t.Errorf("Empty() = %v", d.Empty())
			}
			if s := d.Summary(); s != tc.summary {
				t.Errorf("Summary() = %q, want %q", s, tc.summary)
			}
		})
	}
}

func TestCandidates(t *testing.T) {
	users := func(cs []Credential) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.User+"/"+c.Password)
		}
		return out
	}
	for _, tc := range []struct {
		id   uint32
		max  int
		want []string
	}{
		{674, 3, []string{"root/calvin", "admin/admin", "ADMIN/ADMIN"}},
		{10876, 3, []string{"ADMIN/ADMIN", "admin/admin", "root/0penBmc"}}, // no duplicate of the generic ADMIN
		{19046, 2, []string{"USERID/PASSW0RD", "admin/admin"}},             // the bound
		{11, 3, []string{"admin/admin", "ADMIN/ADMIN", "root/0penBmc"}},    // HPE: no fixed default
		{0, 3, []string{"admin/admin", "ADMIN/ADMIN", "root/0penBmc"}},     // unknown manufacturer
		{49622, 3, []string{"root/0penBmc", "admin/admin", "ADMIN/ADMIN"}},
		{674, 0, nil},
	} {
		if got := users(Candidates(tc.id, tc.max)); !slices.Equal(got, tc.want) {
			t.Errorf("Candidates(%d, %d) = %v, want %v", tc.id, tc.max, got, tc.want)
		}
	}
	for _, c := range append(append([]Credential(nil), Defaults...), Generic...) {
		if c.User == "" || c.Password == "" || c.Source == "" || len(c.User) > 16 || len(c.Password) > 20 {
			t.Errorf("bad default %+v", c)
		}
	}
	if c, ok := ownDefault("root", []byte("calvin")); !ok || c.Vendor != "Dell" {
		t.Errorf("ownDefault(root, calvin) = %+v %v", c, ok)
	}
	if _, ok := ownDefault("root", []byte("s3cret")); ok {
		t.Error("ownDefault(root, s3cret) found a default")
	}
}

// TestEventCatalogue: every finding code's event is in the catalogue
// (internal/evcode), with the severity the finding carries.
func TestEventCatalogue(t *testing.T) {
	for _, c := range Codes {
		k, ok := evcode.Lookup(c.EventCode())
		if !ok || store.Severity(k.Severity) != c.Severity() || k.Dedup == 0 {
			t.Errorf("%s: catalogue %+v %v", c.EventCode(), k, ok)
		}
	}
	if _, ok := evcode.Lookup(EventDrift); !ok {
		t.Errorf("%s not in the catalogue", EventDrift)
	}
}
