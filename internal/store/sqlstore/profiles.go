package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Profiles returns every stored profile by account ID.
func (db *DB) Profiles(ctx context.Context) (map[int64]Profile, error) {
	rows, err := db.read().query(ctx, `SELECT account_id, address, suite, quirks, redfish_auth, learned_at FROM bmc_profiles ORDER BY account_id`)
	if err != nil {
		return nil, mapErr(err, "")
	}
	defer rows.Close()
	out := map[int64]Profile{}
	for rows.Next() {
		var p Profile
		var quirks string
		var at int64
		if err := rows.Scan(&p.AccountID, &p.Address, &p.Suite, &quirks, &p.RedfishAuth, &at); err != nil {
			return nil, mapErr(err, "")
		}
		if quirks != "" {
			p.Quirks = strings.Split(quirks, ",")
		}
		p.LearnedAt = fromTS(at)
		out[p.AccountID] = p
	}
	return out, mapErr(rows.Err(), "")
}

// SaveProfile stores p for its account, replacing the previous one. An
// unknown account is ErrNotFound.
func (db *DB) SaveProfile(ctx context.Context, p Profile) error {
	if p.Suite < 0 || p.Suite > 255 {
		return &FieldError{Field: "suite", Reason: fmt.Sprintf("%d is not in 0..255", p.Suite)}
	}
	for _, q := range p.Quirks {
		if q == "" || strings.ContainsAny(q, ", ") {
			return &FieldError{Field: "quirks", Reason: fmt.Sprintf("%q is not a quirk name", q)}
		}
	}
	switch p.RedfishAuth {
	case "", "session", "basic":
	default:
		return &FieldError{Field: "redfish_auth", Reason: fmt.Sprintf("%q is not a learned authentication (session or basic)", p.RedfishAuth)}
	}
	if p.LearnedAt.IsZero() {
		p.LearnedAt = now()
	}
	return db.tx(ctx, func(x q) error {
		res, err := x.exec(ctx, `INSERT INTO bmc_profiles (account_id, address, suite, quirks, redfish_auth, learned_at)
SELECT id, ?, ?, ?, ?, ? FROM accounts WHERE id = ?
ON CONFLICT (account_id) DO UPDATE SET address = excluded.address, suite = excluded.suite, quirks = excluded.quirks, redfish_auth = excluded.redfish_auth, learned_at = excluded.learned_at`,
			p.Address, p.Suite, strings.Join(p.Quirks, ","), p.RedfishAuth, ts(p.LearnedAt), p.AccountID)
		if err != nil {
			return mapErr(err, "")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &FieldError{Field: "account_id", Reason: fmt.Sprintf("no account with ID %d", p.AccountID), Err: ErrNotFound}
		}
		return nil
	})
}

// supportedSuites are the RMCP+ cipher suites an allow-list may name
// (IPMI 2.0 table 22-20, those with authentication); 0 never.
var supportedSuites = []int{1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17}

// checkSuiteList says what is wrong with an allow-list, or "".
func checkSuiteList(l []int) string {
	for i, n := range l {
		switch {
		case n == 0:
			return "names suite 0 (no authentication, integrity or encryption), which is never allowed"
		case !slices.Contains(supportedSuites, n):
			return fmt.Sprintf("names suite %d, which is not supported (1, 2, 3, 6, 7, 8, 11, 12, 15, 16, 17)", n)
		case slices.Contains(l[:i], n):
			return fmt.Sprintf("names suite %d twice", n)
		}
	}
	return ""
}

func suiteText(l []int) string {
	parts := make([]string, len(l))
	for i, n := range l {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ",")
}

func parseSuiteText(s string) []int {
	if s == "" {
		return nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}
