package vocab

import (
	"fmt"
	"strconv"
	"strings"
)

// IPMBRule maps an enclosure's slots to the IPMB addresses of the blades'
// controllers, as an enclosure's inventory entry writes it (its `ipmb`
// field): "0x82+2" — slot 1 at 0x82, each next slot 2 further (the ATCA
// convention, IPMB-0 address = 2 × hardware address) — or a list
// "0x82,0x84,0x8a", one address per slot from slot 1. The empty rule is
// DefaultIPMBRule.
type IPMBRule struct {
	base, step byte
	list       []byte
}

// DefaultIPMBRule is the rule of an ipmb enclosure that names none.
const DefaultIPMBRule = "0x82+2"

// ParseIPMBRule reads a rule; an error names what is wrong with it.
func ParseIPMBRule(s string) (IPMBRule, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		s = DefaultIPMBRule
	}
	addr := func(t string) (byte, error) {
		v, err := strconv.ParseUint(strings.TrimSpace(t), 0, 8)
		if err != nil {
			return 0, fmt.Errorf("%q is not a byte (write IPMB addresses as 0x82)", strings.TrimSpace(t))
		}
		if v&1 != 0 || v == 0 {
			return 0, fmt.Errorf("%#02x is not an IPMB slave address (8-bit form: even, non-zero)", v)
		}
		return byte(v), nil
	}
	if b, st, ok := strings.Cut(s, "+"); ok {
		base, err := addr(b)
		if err != nil {
			return IPMBRule{}, err
		}
		step, err := strconv.ParseUint(strings.TrimSpace(st), 0, 8)
		if err != nil || step == 0 || step&1 != 0 {
			return IPMBRule{}, fmt.Errorf("step %q must be an even number of addresses between slots (2 for consecutive controllers)", strings.TrimSpace(st))
		}
		return IPMBRule{base: base, step: byte(step)}, nil
	}
	var r IPMBRule
	for _, t := range strings.Split(s, ",") {
		a, err := addr(t)
		if err != nil {
			return IPMBRule{}, err
		}
		r.list = append(r.list, a)
	}
	return r, nil
}

// Address is the IPMB address of the controller in slot (from 1).
func (r IPMBRule) Address(slot int) (byte, error) {
	if slot < 1 {
		return 0, fmt.Errorf("slot %d: slots count from 1", slot)
	}
	if r.list != nil {
		if slot > len(r.list) {
			return 0, fmt.Errorf("slot %d: the rule lists %d addresses", slot, len(r.list))
		}
		return r.list[slot-1], nil
	}
	if r.step == 0 {
		r.base, r.step = 0x82, 2
	}
	a := int(r.base) + int(r.step)*(slot-1)
	if a > 0xfe {
		return 0, fmt.Errorf("slot %d: %#x+%d·%d is past the last IPMB address", slot, r.base, r.step, slot-1)
	}
	return byte(a), nil
}
