package web_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/lightsout/lightsout/internal/api/apitest"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/web"
)

// TestMachineTableLarge: the table of a 50,000-machine fleet renders one
// page of 100 rows: the page's size does not grow with the fleet. How fast
// it renders is measured by bench/api, not asserted here (a timed limit
// failed on a loaded machine).
func TestMachineTableLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 50,000 machines")
	}
	const n = 50000
	e := apitest.Start(t, apitest.Options{})
	imp := make([]store.ImportRow, n)
	for i := range imp {
		imp[i] = store.ImportRow{Line: i + 1,
			Machine: store.Machine{Name: fmt.Sprintf("m-%05d", i), Group: fmt.Sprintf("g%d", i%50), Enclosure: "", GUID: ""},
			Account: store.Account{Protocol: "ipmi", Address: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), Port: 623,
				User: "admin", Password: []byte("pw"), Privilege: "administrator"}}
	}
	if err := e.Server.Store.Import(context.Background(), imp, nil, false); err != nil {
		t.Fatal(err)
	}
	defer func(old time.Duration) { web.RowsTTL = old }(web.RowsTTL)
	web.RowsTTL = 2 * time.Second
	b := login(t, e, store.RoleViewer)
	for _, path := range []string{"/machines", "/machines?page=250&sort=-name", "/machines?q=m-4&group=g7&sort=state", "/machines?state=Unknown&page=400"} {
		start := time.Now()
		code, body := b.get(path)
		d := time.Since(start)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d", path, code)
		}
		if got := len(rows(body)); got > web.PageSize {
			t.Errorf("GET %s: %d rows", path, got)
		}
		t.Logf("GET %s: %v, %d bytes, total %d", path, d, len(body), total(t, body))
		if len(body) > 512<<10 {
			t.Errorf("GET %s: %d bytes for one page of %d rows", path, len(body), web.PageSize)
		}
	}
}
