package sim

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/bougou/go-ipmi/pkg/hal"
	"github.com/bougou/go-ipmi/pkg/types"
)

// simHAL is the "hardware" under a simulated BMC: chassis power and the
// identify LED live on the BMC (they survive firmware restarts), sensor
// readings are computed from the BMC's identity and power state, and the
// SDR repository is shared by the whole fleet (read-only).
type simHAL struct {
	b *BMC
	// guid is the System GUID Get System GUID answers: the BMC's, fixed
	// for the life of the firmware (go-ipmi's BMC.GUID is what RAKP 2
	// carries, which quirks rakp2_guid_zero and rakp2_guid_other change).
	guid [16]byte
}

var _ hal.HAL = (*simHAL)(nil)

func (h *simHAL) Chassis() hal.ChassisHAL { return chassisHAL{h.b} }
func (h *simHAL) Sensors() hal.SensorHAL  { return sensorHAL{h.b} }
func (h *simHAL) Storage() hal.StorageHAL { return storageHAL{} }
func (h *simHAL) Network() hal.NetworkHAL { return nil }
func (h *simHAL) GPIO() hal.GPIOHAL       { return nil }
func (h *simHAL) I2C() hal.I2CHAL         { return nil }
func (h *simHAL) Console() hal.ConsoleHAL { return nil }
func (h *simHAL) Close() error            { return nil }

// simOf returns the simulated BMC behind a go-ipmi BMC, or nil.
func simOf(h hal.HAL) *BMC {
	if s, ok := h.(*simHAL); ok {
		return s.b
	}
	return nil
}

// ---------------------------------------------------------------------------
// Chassis

type chassisHAL struct{ b *BMC }

func (c chassisHAL) PowerState(context.Context) (bool, error) { return c.b.power.Load(), nil }

func (c chassisHAL) SetPower(_ context.Context, on bool) error {
	c.b.power.Store(on)
	return nil
}

// PowerCycle turns a running system off and on again; a system that is off
// comes on (what most BMCs do).
func (c chassisHAL) PowerCycle(context.Context) error {
	c.b.power.Store(true)
	return nil
}

// ColdReset (hard reset, also BMC cold reset): the host reboots, power
// stays as it is.
func (chassisHAL) ColdReset(context.Context) error { return nil }

// WarmReset (BMC warm reset): nothing visible. Chassis Control soft
// shutdown is served by the simulator's own handler, which powers off.
func (chassisHAL) WarmReset(context.Context) error { return nil }

func (c chassisHAL) Identify(_ context.Context, seconds uint8) error {
	c.b.setIdentify(seconds)
	return nil
}

func (chassisHAL) IntrusionState(context.Context) (bool, error) { return false, nil }

func (chassisHAL) SetBootFlags(context.Context, *types.BootOptionParam_BootFlags) error {
	return hal.ErrNotSupported
}

func (chassisHAL) GetBootFlags(context.Context) (*types.BootOptionParam_BootFlags, error) {
	return nil, hal.ErrNotSupported
}

func (chassisHAL) SetBootInfoAcknowledge(context.Context, *types.BootOptionParam_BootInfoAcknowledge) error {
	return nil
}

func (chassisHAL) GetBootInfoAcknowledge(context.Context) (*types.BootOptionParam_BootInfoAcknowledge, error) {
	return nil, hal.ErrNotSupported
}

// setIdentify turns the identify LED on for seconds (0 off, 255 forced on).
func (b *BMC) setIdentify(seconds uint8) {
	switch seconds {
	case 0:
		b.identify.Store(0)
	case 0xFF:
		b.identify.Store(-1)
	default:
		b.identify.Store(time.Now().Add(time.Duration(seconds) * time.Second).UnixNano())
	}
}

// identifyState is the identify LED: 0 off, 1 on for a while, 2 on until
// turned off.
func (b *BMC) identifyState() uint8 {
	v := b.identify.Load()
	switch {
	case v == -1:
		return 2
	case v > time.Now().UnixNano():
		return 1
	}
	return 0
}

// ---------------------------------------------------------------------------
// Sensors

// sensor is one simulated sensor with its SDR conversion (y = M*x * 10^R).
type sensor struct {
	num     uint8
	name    string
	stype   uint8 // sensor type (Table 42-3)
	entity  uint8
	unit    uint8 // base unit (Table 43-15)
	m       uint8
	rexp    int8
	nominal uint8
	ucrit   uint8 // upper critical threshold, raw
	read    func(b *BMC, h uint64, on bool) uint8
}

var sensors = []sensor{
	{num: 0x01, name: "Inlet Temp", stype: 0x01, entity: 0x37, unit: 1, m: 1, nominal: 22, ucrit: 42,
		read: func(_ *BMC, h uint64, _ bool) uint8 { return uint8(18 + h%9) }},
	{num: 0x02, name: "CPU1 Temp", stype: 0x01, entity: 0x03, unit: 1, m: 1, nominal: 55, ucrit: 95,
		read: func(_ *BMC, h uint64, on bool) uint8 {
			if !on {
				return uint8(18 + h%9)
			}
			return uint8(38 + (h>>8)%25)
		}},
	{num: 0x03, name: "FAN1", stype: 0x04, entity: 0x1D, unit: 18, m: 60, nominal: 100, ucrit: 0,
		read: func(_ *BMC, h uint64, on bool) uint8 {
			if !on {
				return 0
			}
			return uint8(75 + (h>>16)%50) // 4500-7440 RPM
		}},
	{num: 0x04, name: "PSU1 12V", stype: 0x02, entity: 0x0A, unit: 4, m: 6, rexp: -2, nominal: 200, ucrit: 220,
		read: func(_ *BMC, h uint64, on bool) uint8 {
			if !on {
				return 0
			}
			return uint8(198 + (h>>24)%5) // 11.88-12.12 V
		}},
}

func sensorByNum(n uint8) *sensor {
	for i := range sensors {
		if sensors[i].num == n {
			return &sensors[i]
		}
	}
	return nil
}

// reading is the sensor's raw value now: fixed per BMC, with a small
// wobble over time so repeated reads are not frozen.
func (s *sensor) reading(b *BMC) uint8 {
	h := mix(b.f.seed, uint64(b.index), saltSensors+uint64(s.num))
	v := s.read(b, h, b.power.Load())
	if v > 2 && s.stype != 0x04 {
		v += uint8(time.Now().Unix()/30%3) - 1
	}
	return v
}

type sensorHAL struct{ b *BMC }

func (s sensorHAL) ReadRaw(_ context.Context, id uint8) (uint8, error) {
	sn := sensorByNum(id)
	if sn == nil {
		return 0, hal.ErrNotFound
	}
	return sn.reading(s.b), nil
}

func (sensorHAL) List(context.Context) ([]hal.SensorDescriptor, error) {
	out := make([]hal.SensorDescriptor, len(sensors))
	for i, s := range sensors {
		out[i] = hal.SensorDescriptor{ID: s.num, Type: s.stype, Name: s.name}
	}
	return out, nil
}

// fullSensorRecord builds the SDR Full Sensor Record (type 01h, IPMI 2.0
// table 43-1) for s, with record ID id.
func fullSensorRecord(id uint16, s sensor) []byte {
	name := []byte(s.name)
	if len(name) > 16 {
		name = name[:16]
	}
	r := make([]byte, 48+len(name))
	binary.LittleEndian.PutUint16(r[0:2], id)
	r[2] = 0x51 // SDR version
	r[3] = 0x01 // full sensor record
	r[4] = byte(len(r) - 5)
	r[5] = 0x20 // owner: BMC
	r[6] = 0x00 // LUN 0
	r[7] = s.num
	r[8] = s.entity
	r[9] = 0x01 // entity instance
	r[10] = 0x67
	r[11] = 0x40 // auto re-arm, no hysteresis, no thresholds (the SDR values are informative)
	r[12] = s.stype
	r[13] = 0x01 // threshold-based
	r[20] = 0x00 // unsigned, no rate, no modifier
	r[21] = s.unit
	r[22] = 0x00
	r[23] = 0x00 // linear
	r[24] = s.m
	r[25] = 0x00
	r[26] = 0x00 // B = 0
	r[27] = 0x00
	r[28] = 0x00
	r[29] = byte(uint8(s.rexp)&0x0F) << 4 // R exponent, B exponent 0
	r[30] = 0x01                          // nominal reading specified
	r[31] = s.nominal
	r[32] = 0xFF
	r[33] = 0x00
	r[34] = 0xFF // sensor maximum
	r[35] = 0x00 // sensor minimum
	r[37] = s.ucrit
	r[47] = 0xC0 | byte(len(name)) // 8-bit ASCII + Latin 1
	copy(r[48:], name)
	return r
}

// sdrRecords is the fleet-wide SDR repository: one full record per sensor.
var sdrRecords = func() map[uint16][]byte {
	m := make(map[uint16][]byte, len(sensors))
	for i, s := range sensors {
		id := uint16(i + 1)
		m[id] = fullSensorRecord(id, s)
	}
	return m
}()

type storageHAL struct{}

func (storageHAL) FRU() hal.FRUStore { return nil }
func (storageHAL) SDR() hal.SDRStore { return sdrStore{} }

// sdrStore serves the read-only fleet SDR repository.
type sdrStore struct{}

func (sdrStore) Read(_ context.Context, id uint16) ([]byte, error) {
	r, ok := sdrRecords[id]
	if !ok {
		return nil, hal.ErrNotFound
	}
	return append([]byte(nil), r...), nil
}

func (sdrStore) Write(context.Context, uint16, []byte) error { return hal.ErrNotSupported }
func (sdrStore) Delete(context.Context, uint16) error        { return hal.ErrNotSupported }

func (sdrStore) RecordIDs(context.Context) ([]uint16, error) {
	ids := make([]uint16, len(sensors))
	for i := range sensors {
		ids[i] = uint16(i + 1)
	}
	return ids, nil
}
