package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/lightsout/lightsout/internal/inventory"
)

// fleet is one running simulated fleet as the clients see it.
type fleet struct {
	Dir       string   // scratch directory of this fleet
	Inventory string   // exported inventory
	PwFile    string   // fleet password
	Conf      string   // FreeIPMI config file (username, password), 0600
	Hosts     []string // "ADDR" (port 623) or "ADDR:PORT", inventory order
	Names     []string // BMC names, same order
	User      string
	Password  string
	// RedfishInventory is the exported inventory with Redfish accounts
	// (HTTPS, port 443), "" when the fleet serves no Redfish.
	RedfishInventory string
	// NoRedfish says why a fleet that should have served Redfish does not.
	NoRedfish string
}

// splitInventory turns the inventory a --redfish simulator exported (Redfish
// accounts) into two: DIR/fleet-redfish.yaml, as exported, and
// DIR/fleet.yaml, the same machines with IPMI accounts on port 623, which
// the same simulator serves too.
func splitInventory(dir string) error {
	src := dir + "/fleet.yaml"
	inv, err := inventory.Load(src)
	if err != nil {
		return err
	}
	if err := os.Rename(src, dir+"/fleet-redfish.yaml"); err != nil {
		return err
	}
	for i := range inv.Machines {
		m := &inv.Machines[i]
		if m.EffectiveProtocol() == inventory.ProtocolRedfish {
			m.Protocol, m.Port = inventory.ProtocolIPMI, 623
		}
	}
	return inventory.Save(src, inv)
}

// loadFleet reads the exported inventory and writes the FreeIPMI config
// file next to it.
func loadFleet(dir string) (*fleet, error) {
	f := &fleet{Dir: dir, Inventory: dir + "/fleet.yaml", PwFile: dir + "/pw", Conf: dir + "/freeipmi.conf"}
	inv, err := inventory.Load(f.Inventory)
	if err != nil {
		return nil, err
	}
	for _, m := range inv.Machines {
		h := m.Address
		if p := m.EffectivePort(); p != 623 {
			h = fmt.Sprintf("%s:%d", m.Address, p)
		}
		f.Hosts = append(f.Hosts, h)
		f.Names = append(f.Names, m.Name)
		if f.User == "" {
			f.User = m.User
		}
	}
	if f.User == "" {
		f.User = "admin"
	}
	pw, err := os.ReadFile(f.PwFile)
	if err != nil {
		return nil, err
	}
	f.Password = strings.TrimRight(strings.SplitN(string(pw), "\n", 2)[0], "\r")
	conf := fmt.Sprintf("# lightsout bench: FreeIPMI credentials (freeipmi.conf(5))\nusername %s\npassword %s\n", f.User, f.Password)
	if err := os.WriteFile(f.Conf, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return f, nil
}

// hostSet is the set of host strings as FreeIPMI prints them.
func (f *fleet) hostSet() map[string]bool {
	m := make(map[string]bool, len(f.Hosts))
	for _, h := range f.Hosts {
		m[h] = true
	}
	return m
}

// hostArg renders hosts for FreeIPMI's -h: a comma list, or hostranges
// (prefix[a-b,...]) if the list would not fit in one argv string
// (MAX_ARG_STRLEN, 128 KiB).
func hostArg(hosts []string) string {
	s := strings.Join(hosts, ",")
	if len(s) < 128<<10-1 {
		return s
	}
	return hostranges(hosts)
}

// hostranges compresses a.b.c.N lists into a.b.c.[n-m,...] groups.
func hostranges(hosts []string) string {
	type group struct {
		prefix string
		nums   []int
	}
	var groups []*group
	var out []string
	flush := func() {
		for _, g := range groups {
			var parts []string
			for i := 0; i < len(g.nums); {
				j := i
				for j+1 < len(g.nums) && g.nums[j+1] == g.nums[j]+1 {
					j++
				}
				if i == j {
					parts = append(parts, strconv.Itoa(g.nums[i]))
				} else {
					parts = append(parts, fmt.Sprintf("%d-%d", g.nums[i], g.nums[j]))
				}
				i = j + 1
			}
			out = append(out, g.prefix+"["+strings.Join(parts, ",")+"]")
		}
		groups = nil
	}
	for _, h := range hosts {
		i := strings.LastIndexByte(h, '.')
		n, err := strconv.Atoi(h[i+1:])
		if i < 0 || strings.Contains(h, ":") || err != nil {
			flush()
			out = append(out, h)
			continue
		}
		p := h[:i+1]
		if len(groups) > 0 && groups[len(groups)-1].prefix == p {
			g := groups[len(groups)-1]
			g.nums = append(g.nums, n)
			continue
		}
		groups = append(groups, &group{prefix: p, nums: []int{n}})
	}
	flush()
	return strings.Join(out, ",")
}

// abbreviate shortens a long host argument for display.
func abbreviate(arg string, n int) string {
	if len(arg) <= 60 {
		return arg
	}
	i := strings.IndexByte(arg, ',')
	j := strings.LastIndexByte(arg, ',')
	if i < 0 || j <= i {
		return arg[:40] + "…"
	}
	return fmt.Sprintf("%s,…,%s (%d hosts)", arg[:i], arg[j+1:], n)
}

// outcome is what a client's output says.
type outcome struct {
	OK       int
	Reported int            // hosts with a result line, ok or not (0: not tracked)
	Counts   map[string]int // per state/reason, power state, ...
	Errors   map[string]int // failure messages, normalized
	MaxMS    float64        // lightsout: largest elapsed_ms
	ByName   map[string]lsObs
	Garbage  int // lines not understood (or naming no host of the fleet)
}

func newOutcome() *outcome {
	return &outcome{Counts: map[string]int{}, Errors: map[string]int{}}
}

type lsObs struct {
	Name       string   `json:"name"`
	Host       string   `json:"host"`
	State      string   `json:"state"`
	Reason     string   `json:"reason"`
	Conditions []string `json:"conditions"`
	Message    string   `json:"message"`
	ElapsedMS  float64  `json:"elapsed_ms"`
}

func eachLine(paths []string, fn func(string)) error {
	for _, p := range paths {
		fh, err := os.Open(p)
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 64<<10), 16<<20)
		for sc.Scan() {
			fn(sc.Text())
		}
		err = sc.Err()
		fh.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// parseLightsout counts JSON objects with "state":"Connectable".
func parseLightsout(r procResult, _ *fleet) *outcome {
	o := newOutcome()
	o.ByName = map[string]lsObs{}
	_ = eachLine(r.Stdouts, func(line string) {
		if strings.TrimSpace(line) == "" {
			return
		}
		var ob lsObs
		if err := json.Unmarshal([]byte(line), &ob); err != nil || ob.State == "" {
			o.Garbage++
			return
		}
		o.ByName[ob.Name] = ob
		key := ob.State
		if ob.Reason != "" {
			key += "/" + ob.Reason
		}
		o.Counts[key]++
		if ob.State == "Connectable" {
			o.OK++
		} else {
			o.Errors[key+": "+trimMsg(ob.Message)]++
		}
		if ob.ElapsedMS > o.MaxMS {
			o.MaxMS = ob.ElapsedMS
		}
	})
	stderrErrors(o, r)
	return o
}

var hostLineRE = regexp.MustCompile(`^(\S+): (.*)$`)

// parseIpmipower counts hosts of the fleet that printed "HOST: on" or
// "HOST: off". Lines naming no host of the fleet (ipmipower overwrites
// unwritten output when its 32 KiB buffer fills, leaving fragments) count as
// garbage.
func parseIpmipower(r procResult, f *fleet) *outcome {
	o := newOutcome()
	known := f.hostSet()
	seen := map[string]bool{}
	_ = eachLine(r.Stdouts, func(line string) {
		line = strings.TrimSpace(line)
		m := hostLineRE.FindStringSubmatch(line)
		if m == nil || !known[m[1]] {
			if line != "" {
				o.Garbage++
			}
			return
		}
		if seen[m[1]] {
			return
		}
		seen[m[1]] = true
		switch msg := strings.TrimSpace(m[2]); msg {
		case "on", "off":
			o.OK++
			o.Counts[msg]++
		default:
			o.Errors[trimMsg(msg)]++
		}
	})
	o.Reported = len(seen)
	stderrErrors(o, r)
	return o
}

var guidRE = regexp.MustCompile(`[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}`)

// parseBmcInfo counts hosts of the fleet that printed a GUID.
func parseBmcInfo(r procResult, f *fleet) *outcome {
	o := newOutcome()
	known := f.hostSet()
	seen := map[string]bool{}
	_ = eachLine(r.Stdouts, func(line string) {
		line = strings.TrimSpace(line)
		m := hostLineRE.FindStringSubmatch(line)
		if m == nil || !known[m[1]] {
			if line != "" {
				o.Garbage++
			}
			return
		}
		if guidRE.MatchString(m[2]) && !seen[m[1]] {
			seen[m[1]] = true
			o.OK++
		}
	})
	// bmc-info reports failures on stderr: "HOST: bmc-info: message".
	_ = eachLine(r.Stderrs, func(line string) {
		line = strings.TrimSpace(line)
		if m := hostLineRE.FindStringSubmatch(line); m != nil && known[m[1]] {
			if !seen[m[1]] {
				seen[m[1]] = true
			}
			o.Errors[trimMsg(m[2])]++
		} else if line != "" {
			o.Errors["stderr: "+trimMsg(line)]++
		}
	})
	o.Reported = len(seen)
	return o
}

// parseGoipmi counts "NAME: ok" lines.
func parseGoipmi(r procResult, _ *fleet) *outcome {
	o := newOutcome()
	_ = eachLine(r.Stdouts, func(line string) {
		switch {
		case strings.HasSuffix(line, ": ok"):
			o.OK++
		case strings.Contains(line, ": error: "):
			o.Errors[trimMsg(line[strings.Index(line, ": error: ")+9:])]++
		case strings.TrimSpace(line) != "":
			o.Garbage++
		}
	})
	stderrErrors(o, r)
	return o
}

var (
	numRE = regexp.MustCompile(`\b\d+(\.\d+){1,3}(:\d+)?\b|\bbmc-\d+\b`)
)

// stderrErrors adds the distinct lines a client printed on stderr, host
// prefixes and addresses stripped, except its own summary lines.
func stderrErrors(o *outcome, r procResult) {
	_ = eachLine(r.Stderrs, func(line string) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "goipmi: ") && strings.Contains(line, " ok, ") {
			return
		}
		o.Errors["stderr: "+trimMsg(line)]++
	})
}

// trimMsg normalizes a message for the histogram: no host prefix, no
// addresses or names, at most 100 characters.
func trimMsg(s string) string {
	s = strings.TrimSpace(s)
	s = numRE.ReplaceAllString(s, "#")
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}

// topErrors renders the most frequent messages.
func topErrors(m map[string]int, k int) string {
	type kv struct {
		k string
		v int
	}
	var l []kv
	for a, b := range m {
		l = append(l, kv{a, b})
	}
	sort.Slice(l, func(i, j int) bool {
		if l[i].v != l[j].v {
			return l[i].v > l[j].v
		}
		return l[i].k < l[j].k
	})
	var parts []string
	for i, e := range l {
		if i == k {
			parts = append(parts, fmt.Sprintf("… %d more kinds", len(l)-k))
			break
		}
		parts = append(parts, fmt.Sprintf("%d× %q", e.v, e.k))
	}
	return strings.Join(parts, "; ")
}
