package sim

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/lightsout/lightsout/internal/guid"
)

// Status is a BMC's state as the control API reports it.
type Status struct {
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// Address and Port are where the BMC answers now.
	Address string `json:"address"`
	Port    int    `json:"port"`
	// HomeAddress and HomePort are where it was registered (the inventory's
	// address); they differ from Address/Port after a swap.
	HomeAddress string `json:"home_address"`
	HomePort    int    `json:"home_port"`
	// SwappedWith names the BMC registered at the address this one answers
	// on now, after a swap.
	SwappedWith string `json:"swapped_with,omitempty"`
	// GUID is the System GUID the BMC reports now, in every rendering.
	GUID guid.Renderings `json:"guid"`
	// RegisteredGUID is the GUID it started with (SMBIOS rendering, as the
	// exported inventory pins it).
	RegisteredGUID string `json:"registered_guid"`
	Power          string `json:"power"` // "on" or "off"
	Identify       bool   `json:"identify"`
	Enclosure      string `json:"enclosure,omitempty"`
	Slot           int    `json:"slot,omitempty"`
	// EnclosureDown is set when the BMC's enclosure manager is down.
	EnclosureDown  bool     `json:"enclosure_down,omitempty"`
	Vendor         string   `json:"vendor"`
	ManufacturerID uint32   `json:"manufacturer_id"`
	ProductID      uint16   `json:"product_id"`
	Firmware       string   `json:"firmware"`
	Faults         Faults   `json:"faults"`
	SessionSlots   int      `json:"session_slots"`
	Counters       Counters `json:"counters"`
	// Redfish counts the Redfish service's requests and sessions (a fleet
	// started with Redfish only).
	Redfish *RedfishCounters `json:"redfish,omitempty"`
	// RedfishCertSHA256 is the SHA-256 of the leaf certificate the Redfish
	// service presents now, as lightsout pins it.
	RedfishCertSHA256 string `json:"redfish_cert_sha256,omitempty"`
	// SessionsBySource counts the sessions each client address opened
	// (bench/scaleout tells instances apart by --source-address).
	SessionsBySource map[string]uint64 `json:"sessions_by_source,omitempty"`
}

// EnclosureStatus is an enclosure as the control API reports it.
type EnclosureStatus struct {
	Name    string   `json:"name"`
	Down    bool     `json:"down"`
	Manager string   `json:"manager"` // the manager endpoint's name (same as Name)
	Address string   `json:"address"`
	Port    int      `json:"port"`
	GUID    string   `json:"guid"` // SMBIOS rendering
	Blades  []string `json:"blades"`
}

// Status returns the BMC's state.
func (b *BMC) Status() Status {
	cur := b.Addr()
	g := b.GUID()
	st := Status{
		Name:           b.name,
		Kind:           b.kind,
		Address:        cur.Addr().String(),
		Port:           int(cur.Port()),
		HomeAddress:    b.home.Addr().String(),
		HomePort:       int(b.home.Port()),
		GUID:           g.Renderings(),
		RegisteredGUID: b.origGUID.String(),
		Power:          "off",
		Identify:       b.identifyState() != 0,
		Enclosure:      b.Enclosure(),
		Slot:           b.slot,
		EnclosureDown:  b.enclosureDown(),
		Vendor:         b.vendor.Name,
		ManufacturerID: b.vendor.ManufacturerID,
		ProductID:      b.vendor.ProductID,
		Firmware:       b.vendor.Firmware,
		Faults:         b.Faults(),
		SessionSlots:   b.f.slots,
		Counters:       b.Counters(),
	}
	if by := b.SessionsBySource(); len(by) > 0 {
		st.SessionsBySource = make(map[string]uint64, len(by))
		for ip, n := range by {
			st.SessionsBySource[ip.String()] = n
		}
	}
	if b.PowerOn() {
		st.Power = "on"
	}
	if b.rf != nil {
		c := b.RedfishCounters()
		st.Redfish = &c
		if der := b.RedfishCertificate(); der != nil {
			sum := sha256.Sum256(der)
			st.RedfishCertSHA256 = hex.EncodeToString(sum[:])
		}
	}
	if cur != b.home {
		if o, ok := b.f.byHome[cur]; ok {
			st.SwappedWith = o.name
		}
	}
	return st
}

// Status returns the enclosure's state.
func (e *Enclosure) Status() EnclosureStatus {
	st := EnclosureStatus{
		Name:    e.name,
		Down:    e.down.Load(),
		Manager: e.em.name,
		Address: e.em.home.Addr().String(),
		Port:    int(e.em.home.Port()),
		GUID:    e.em.origGUID.String(),
		Blades:  make([]string, len(e.blades)),
	}
	for i, b := range e.blades {
		st.Blades[i] = b.name
	}
	return st
}
