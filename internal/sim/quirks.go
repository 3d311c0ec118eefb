package sim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// QuirkSet is a set of vendor quirks a simulated BMC imitates: behaviours
// of real BMCs that break naive clients (FreeIPMI's workaround list,
// /work/shared/research/ipmi-quirks.md; docs/interop.md says what
// lightsout does about each). Written as a list of names (or one name) in
// JSON and YAML: quirk: [no_ping, suite3_only].
type QuirkSet uint32

const (
	// QuirkNoPing drops RMCP presence pings (ASF) while IPMI is answered:
	// FreeIPMI's ipmipower "ipmiping" workaround; Intel M50FCP, Windmill,
	// pyghmi.
	QuirkNoPing QuirkSet = 1 << iota
	// QuirkSuite3Only lists only cipher suite 3 in Get Channel Cipher
	// Suites and answers any Open Session proposal with suite 3's
	// algorithms, as pyghmi (OpenStack virtualbmc) does.
	QuirkSuite3Only
	// QuirkOpenSess01 answers Open Session status 0x01 (insufficient
	// resources) for every proposal but suite 17's, as Intel M50CYP does
	// (FreeIPMI bugs doc LAN Auth #28).
	QuirkOpenSess01
	// QuirkGUID0xD4 answers Get System GUID with completion code 0xD4
	// (insufficient privilege) whatever the session's privilege, as
	// Supermicro X8DTL/X9DRFR and Windmill answer optional commands
	// (FreeIPMI bugs doc Misc #2/#5/#6).
	QuirkGUID0xD4
	quirkEnd
)

var quirkNames = []struct {
	q    QuirkSet
	name string
	desc string
}{
	{QuirkNoPing, "no_ping", "no RMCP presence pong (Intel M50FCP, Windmill, pyghmi)"},
	{QuirkSuite3Only, "suite3_only", "lists only suite 3 and answers suite 3's algorithms to any proposal (pyghmi)"},
	{QuirkOpenSess01, "opensess_0x01", "Open Session status 0x01 for every suite but 17 (Intel M50CYP, LAN Auth #28)"},
	{QuirkGUID0xD4, "guid_0xd4", "Get System GUID answered 0xD4 whatever the privilege (Supermicro, Windmill; Misc #2/#5/#6)"},
}

// QuirkNames lists the quirk names the simulator knows.
func QuirkNames() []string {
	out := make([]string, len(quirkNames))
	for i, n := range quirkNames {
		out[i] = n.name
	}
	return out
}

// Names lists the quirks in the set.
func (s QuirkSet) Names() []string {
	var out []string
	for _, n := range quirkNames {
		if s&n.q != 0 {
			out = append(out, n.name)
		}
	}
	return out
}

func (s QuirkSet) String() string { return strings.Join(s.Names(), ",") }

func (s *QuirkSet) fromNames(names []string) error {
	*s = 0
	for _, name := range names {
		i := slices.IndexFunc(quirkNames, func(n struct {
			q    QuirkSet
			name string
			desc string
		}) bool {
			return n.name == strings.TrimSpace(name)
		})
		if i < 0 {
			return fmt.Errorf("unknown quirk %q (known: %s)", name, strings.Join(QuirkNames(), ", "))
		}
		*s |= quirkNames[i].q
	}
	return nil
}

// MarshalJSON writes the set as a list of names.
func (s QuirkSet) MarshalJSON() ([]byte, error) {
	n := s.Names()
	if n == nil {
		n = []string{}
	}
	return json.Marshal(n)
}

// UnmarshalJSON reads a list of names or one name.
func (s *QuirkSet) UnmarshalJSON(b []byte) error {
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return fmt.Errorf("quirk: want a quirk name or a list of them (%s)", strings.Join(QuirkNames(), ", "))
		}
		names = []string{one}
	}
	return s.fromNames(names)
}

// MarshalYAML writes the set as a list of names.
func (s QuirkSet) MarshalYAML() (any, error) { return s.Names(), nil }

// UnmarshalYAML reads a list of names or one name.
func (s *QuirkSet) UnmarshalYAML(n *yaml.Node) error {
	var names []string
	if n.Kind == yaml.ScalarNode {
		names = []string{n.Value}
	} else if err := n.Decode(&names); err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: quirk: want a quirk name or a list of them (%s)", n.Line, strings.Join(QuirkNames(), ", "))}}
	}
	if err := s.fromNames(names); err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: quirk: %v", n.Line, err)}}
	}
	return nil
}

// Algorithm numbers of the Open Session Request's payloads (IPMI 2.0
// tables 13-17..19) for suites 3 and 17.
var (
	algsSuite3  = [3]byte{0x01, 0x01, 0x01} // HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128
	algsSuite17 = [3]byte{0x03, 0x04, 0x01} // HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128
)

// openSessAlgs returns the algorithm bytes' offsets in an Open Session
// Request payload (auth, integrity, confidentiality), false if too short.
func openSessAlgs(pl []byte) ([3]int, bool) {
	if len(pl) < 32 {
		return [3]int{}, false
	}
	return [3]int{12, 20, 28}, true
}

// quirkOpenSession applies the Open Session quirks to an incoming request
// payload (rewritten in place). It returns a reply to send instead of
// letting the server see the request, or nil.
func quirkOpenSession(q QuirkSet, pl []byte) []byte {
	off, ok := openSessAlgs(pl)
	if !ok {
		return nil
	}
	algs := [3]byte{pl[off[0]], pl[off[1]], pl[off[2]]}
	if q&QuirkOpenSess01 != 0 && algs != algsSuite17 {
		return rmcpPlusError(ptOpenSessRsp, pl[0], rmcpInsufficientResources, leUint32(pl[4:8]))
	}
	if q&QuirkSuite3Only != 0 {
		for i, o := range off {
			pl[o] = algsSuite3[i]
		}
	}
	return nil
}

func leUint32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// isPresencePing reports an RMCP ASF Presence Ping.
func isPresencePing(pkt []byte) bool {
	return len(pkt) >= 12 && pkt[0] == 0x06 && pkt[3] == 0x06 && pkt[8] == 0x80
}
