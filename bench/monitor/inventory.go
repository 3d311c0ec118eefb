package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/lightsout/lightsout/internal/guid"
	"github.com/lightsout/lightsout/internal/inventory"
	"github.com/lightsout/lightsout/internal/ipmi"
	"github.com/lightsout/lightsout/internal/manager"
	"github.com/lightsout/lightsout/internal/monitor"
	"github.com/lightsout/lightsout/internal/secret"
	"github.com/lightsout/lightsout/internal/state"
	"github.com/lightsout/lightsout/internal/store"
	"github.com/lightsout/lightsout/internal/store/sqlstore"
)

// fleetNames maps between the names the server knows (one fleet,
// bmc-00001 … bmc-NNNNN) and each shard's own names (each shard starts at
// bmc-00001).
type fleetNames struct {
	width int
}

func newFleetNames(n int) fleetNames {
	return fleetNames{width: max(5, len(strconv.Itoa(n)))}
}

// global is the server-side name of shard s's BMC local.
func (f fleetNames) global(s *simShard, local string) string {
	i, err := strconv.Atoi(strings.TrimPrefix(local, "bmc-"))
	if err != nil || !strings.HasPrefix(local, "bmc-") {
		return fmt.Sprintf("shard%d/%s", s.index, local)
	}
	return fmt.Sprintf("bmc-%0*d", f.width, s.offset+i)
}

// mergeInventories reads every shard's exported inventory and returns one
// fleet with global names, every machine pointing at pwFile, checked over
// proto (ipmi: a Redfish machine of a --redfish fleet is checked at its
// IPMI port instead). It is also written to path (for --keep, and for an
// import through the API).
func mergeInventories(shards []*simShard, names fleetNames, pwFile, proto, path string) (*inventory.Inventory, error) {
	merged := &inventory.Inventory{}
	for _, s := range shards {
		inv, err := inventory.Load(s.Inventory)
		if err != nil {
			return nil, fmt.Errorf("simulator shard %d inventory: %v", s.index, err)
		}
		if len(inv.Machines) != s.Count {
			return nil, fmt.Errorf("simulator shard %d inventory: %d machines, %d expected", s.index, len(inv.Machines), s.Count)
		}
		for _, m := range inv.Machines {
			m.Name = names.global(s, m.Name)
			m.PasswordFile = pwFile
			m.Line = 0
			if proto == "ipmi" && m.Protocol == inventory.ProtocolRedfish {
				m.Protocol, m.Port = "", 0 // the simulator's IPMI port, 623
			}
			merged.Machines = append(merged.Machines, m)
		}
	}
	merged.Dir = filepath.Dir(path)
	if err := inventory.Save(path, merged); err != nil {
		return nil, fmt.Errorf("writing the merged inventory: %v", err)
	}
	return merged, nil
}

// importInventory stores inv in a fresh data directory the way the server
// would (same key file, same database, same manager.Import as POST
// /api/v1/import), before the server starts on it.
func importInventory(ctx context.Context, dataDir string, inv *inventory.Inventory) (time.Duration, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return 0, err
	}
	box, err := secret.LoadOrCreateKey(filepath.Join(dataDir, "secret.key"))
	if err != nil {
		return 0, err
	}
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(dataDir, "lightsout.db"), Box: box})
	if err != nil {
		return 0, err
	}
	pws := &inventory.Passwords{Dir: inv.Dir}
	passwords := make(map[string][]byte, len(inv.Machines))
	for _, m := range inv.Machines {
		pw, err := pws.Of(m)
		if err != nil {
			st.Close()
			return 0, err
		}
		passwords[m.Name] = pw
	}
	// The monitor is never run: Import only loads the new channels into it.
	mon := monitor.New(st, monitor.Config{})
	mgr := manager.New(st, mon, nil, nil)
	t := time.Now()
	n, err := mgr.Import(ctx, manager.Actor{Name: "bench", Role: store.RoleAdmin}, inv, passwords, nil, false)
	d := time.Since(t)
	cerr := st.Close()
	if err != nil {
		return d, fmt.Errorf("import: %v", err)
	}
	if n != len(inv.Machines) {
		return d, fmt.Errorf("import: %d machines imported, %d in the inventory", n, len(inv.Machines))
	}
	return d, cerr
}

// seedStates stores, for every channel, the state the monitor would declare
// on its first check of a healthy BMC: Connectable, with the power state
// and System GUID the simulator reports now (the GUID as the probe renders
// the bytes Get System GUID returns). The server then starts as it would
// after a restart on an established fleet: its checks find nothing new and
// write nothing. For a Redfish leg it also pins each BMC's certificate
// and stores the authentication the monitor learns of the simulator
// (session), as an established server holds them. It returns how many
// states were stored.
func seedStates(ctx context.Context, dataDir string, shards []*simShard, names fleetNames, proto string) (int, error) {
	box, err := secret.LoadOrCreateKey(filepath.Join(dataDir, "secret.key"))
	if err != nil {
		return 0, err
	}
	st, err := sqlstore.Open(ctx, sqlstore.Options{DSN: filepath.Join(dataDir, "lightsout.db"), Box: box})
	if err != nil {
		return 0, err
	}
	defer st.Close()
	accts, err := st.Accounts(ctx, store.MachineFilter{}, store.Page{})
	if err != nil {
		return 0, err
	}
	byName := make(map[string]int64, len(accts))
	addrOf := make(map[int64]string, len(accts))
	for _, a := range accts {
		byName[a.Machine] = a.ID
		addrOf[a.ID] = net.JoinHostPort(a.Address, strconv.Itoa(a.Port))
	}
	now := time.Now()
	n := 0
	for _, s := range shards {
		list, err := s.bmcs()
		if err != nil {
			return n, fmt.Errorf("simulator shard %d: %v", s.index, err)
		}
		for _, b := range list {
			name := names.global(s, b.Name)
			id, ok := byName[name]
			if !ok {
				return n, fmt.Errorf("%s: no account in the store", name)
			}
			raw, err := hex.DecodeString(b.GUID.Raw)
			if err != nil || len(raw) != 16 {
				return n, fmt.Errorf("%s: simulator GUID %q: not 16 hex bytes", name, b.GUID.Raw)
			}
			cs := store.ChannelState{AccountID: id, State: state.Connectable, Since: now, CheckedAt: now,
				GUID: guid.GUID(raw).String(), Power: b.Power, Message: "seeded by bench/monitor before the server started"}
			if err := st.SaveState(ctx, cs, nil); err != nil {
				return n, fmt.Errorf("%s: %v", name, err)
			}
			// What the monitor learned about the BMC, as it would have
			// stored it (a healthy simulated BMC: cipher suite 17, no
			// quirks, RAKP 2's GUID seen equal to its System GUID; a
			// Redfish one: its certificate pinned, sessions): without it
			// every first check writes a profile.
			prof := store.Profile{AccountID: id, Address: addrOf[id], Suite: 17, Quirks: ipmi.QuirkRAKP2GUID.Names(), LearnedAt: now}
			if proto == "redfish" {
				if err := st.PinCert(ctx, name, b.RedfishCertSHA256); err != nil {
					return n, fmt.Errorf("%s: pin %q: %v", name, b.RedfishCertSHA256, err)
				}
				prof = store.Profile{AccountID: id, Address: addrOf[id], RedfishAuth: "session", LearnedAt: now}
			}
			if err := st.SaveProfile(ctx, prof); err != nil {
				return n, fmt.Errorf("%s: profile: %v", name, err)
			}
			n++
		}
	}
	return n, nil
}
