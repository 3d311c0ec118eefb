package sim

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/bougou/go-ipmi/pkg/bmc"

	"github.com/lightsout/lightsout/internal/guid"
)

// Salts keep the values derived from (seed, index) independent.
const (
	saltGUID         = 0x6775_6964 << 32
	saltEMGUID       = 0x656d_6775 << 32
	saltReplacedGUID = 0x7265_706c << 32
	saltRAKPGUID     = 0x726b_7032 << 32
	saltVendor       = 0x7665_6e64 << 32
	saltPower        = 0x706f_7772 << 32
	saltSensors      = 0x7365_6e73 << 32
	saltSEL          = 0x7365_6c00 << 32
	saltPassword     = 0x7061_7373 << 32
	saltBMCKey       = 0x6b67_6b65 << 32
)

// mix is a SplitMix64-style hash of (seed, index, salt): the fleet's
// deterministic source for identities.
func mix(seed, index, salt uint64) uint64 {
	z := seed ^ (index * 0x9E3779B97F4A7C15) ^ salt
	for i := 0; i < 2; i++ {
		z += 0x9E3779B97F4A7C15
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
		z = (z ^ (z >> 27)) * 0x94D049BB133111EB
		z ^= z >> 31
	}
	return z
}

// deriveGUID is a random-looking (RFC 4122 version 4) GUID fixed by seed,
// index and salt.
func deriveGUID(seed, index, salt uint64) guid.GUID {
	var g guid.GUID
	binary.BigEndian.PutUint64(g[0:8], mix(seed, index, salt))
	binary.BigEndian.PutUint64(g[8:16], mix(seed, index, salt+1))
	g[6] = g[6]&0x0F | 0x40
	g[8] = g[8]&0x3F | 0x80
	// Stored as the IPMI specification prescribes (all 16 bytes reversed),
	// so ipmitool reads it in IPMI encoding without a warning.
	return guid.FromIPMI(g)
}

// Vendor is a BMC vendor and firmware profile: what Get Device ID reports.
type Vendor struct {
	// Name labels the profile in status output ("dell").
	Name string `json:"name" yaml:"name"`
	// ManufacturerID is the IANA enterprise number (674 Dell, 11 HPE,
	// 19046 Lenovo, 10876 Supermicro); at most 20 bits.
	ManufacturerID uint32 `json:"manufacturer_id" yaml:"manufacturer_id"`
	// ProductID is the vendor's product number.
	ProductID uint16 `json:"product_id" yaml:"product_id"`
	// Firmware is "major.minor": major 0-127, minor two decimal digits
	// ("4.40").
	Firmware string `json:"firmware" yaml:"firmware"`
	// Weight is the profile's share of the fleet (default 1).
	Weight int `json:"weight,omitempty" yaml:"weight,omitempty"`
}

// DefaultVendors is the fleet mix used when a fleet names none: a few
// vendor and firmware combinations, so fleet-wide correlation has
// something to find.
var DefaultVendors = []Vendor{
	{Name: "dell", ManufacturerID: 674, ProductID: 0x0100, Firmware: "4.40", Weight: 3},
	{Name: "dell", ManufacturerID: 674, ProductID: 0x0100, Firmware: "5.10", Weight: 2},
	{Name: "hpe", ManufacturerID: 11, ProductID: 0x2000, Firmware: "2.72", Weight: 2},
	{Name: "lenovo", ManufacturerID: 19046, ProductID: 0x0700, Firmware: "3.10", Weight: 1},
	{Name: "supermicro", ManufacturerID: 10876, ProductID: 0x0902, Firmware: "1.73", Weight: 2},
}

// parseFirmware reads "major.minor" into Get Device ID's major (binary)
// and minor (BCD) revision bytes.
func parseFirmware(s string) (major, minorBCD uint8, err error) {
	maj, min, ok := strings.Cut(s, ".")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not major.minor (e.g. \"4.40\")", s)
	}
	m, err1 := strconv.Atoi(maj)
	if err1 != nil || m < 0 || m > 127 {
		return 0, 0, fmt.Errorf("%q: major revision must be 0-127", s)
	}
	if len(min) < 1 || len(min) > 2 {
		return 0, 0, fmt.Errorf("%q: minor revision must be one or two decimal digits", s)
	}
	n, err2 := strconv.Atoi(min)
	if err2 != nil || n < 0 {
		return 0, 0, fmt.Errorf("%q: minor revision must be one or two decimal digits", s)
	}
	if len(min) == 1 {
		n *= 10 // "4.4" reads as 4.40
	}
	return uint8(m), uint8(n/10<<4 | n%10), nil
}

func (v Vendor) validate(prefix string) error {
	if strings.TrimSpace(v.Name) == "" {
		return fieldErr(prefix+"name", "missing (name the profile, e.g. \"dell\")")
	}
	if v.ManufacturerID == 0 || v.ManufacturerID > 0xFFFFF {
		return fieldErr(prefix+"manufacturer_id", "must be an IANA enterprise number between 1 and 1048575, got %d", v.ManufacturerID)
	}
	if _, _, err := parseFirmware(v.Firmware); err != nil {
		return fieldErr(prefix+"firmware", "%v", err)
	}
	if v.Weight < 0 {
		return fieldErr(prefix+"weight", "must not be negative, got %d", v.Weight)
	}
	return nil
}

func (v Vendor) deviceInfo() bmc.DeviceInfo {
	major, minor, _ := parseFirmware(v.Firmware)
	return bmc.DeviceInfo{
		DeviceID:       0x20,
		DeviceRevision: 0x01,
		FirmwareMajor:  major,
		FirmwareMinor:  minor,
		IPMIVersion:    0x02, // IPMI 2.0: BCD 2.0, LS nibble first → 02h
		ManufacturerID: v.ManufacturerID,
		ProductID:      v.ProductID,
		// Sensor device, SEL device, chassis device (Table 20-2).
		AdditionalDeviceSupport: 0x01 | 0x04 | 0x80,
	}
}

// pickVendor chooses a profile for BMC index, by weight.
func pickVendor(vs []Vendor, seed, index uint64) Vendor {
	total := 0
	for _, v := range vs {
		total += weight(v)
	}
	n := int(mix(seed, index, saltVendor) % uint64(total))
	for _, v := range vs {
		if n < weight(v) {
			return v
		}
		n -= weight(v)
	}
	return vs[len(vs)-1]
}

func weight(v Vendor) int {
	if v.Weight == 0 {
		return 1
	}
	return v.Weight
}
