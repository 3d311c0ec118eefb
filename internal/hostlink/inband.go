package hostlink

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/lightsout/lightsout/internal/guid"
)

// IPMI commands of the in-band path.
const (
	netFnApp         = 0x06
	cmdGetDeviceID   = 0x01
	cmdGetSystemGUID = 0x37
)

// identity is what a path learned from the BMC.
type identity struct {
	UUID, Firmware string
	fingerprint    string
	latency        time.Duration
}

// checkInBand tries the device: Get Device ID proves the path, Get System
// GUID adds the UUID (its failure does not fail the path: Device ID
// answered, the link is up; its timeouts still count).
func checkInBand(ctx context.Context, cfg Config, o *Observation) (Attempt, identity) {
	a := Attempt{Path: PathInBand, Address: cfg.Device}
	var id identity
	dev, err := cfg.Opener(cfg.Device)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			a.Err = "skipped: no device (" + err.Error() + ")"
			a.Cause = fmt.Errorf("%w: %w", ErrNoDevice, err)
			return a, id
		}
		a.Err = "open: " + err.Error()
		a.Cause = err
		return a, id
	}
	defer dev.Close()

	start := time.Now()
	resp, tries, err := sendRetry(ctx, cfg, dev, netFnApp, cmdGetDeviceID, o)
	a.Tries = tries
	if err == nil {
		id.Firmware, err = parseDeviceID(resp)
	}
	if err != nil {
		a.Err = "Get Device ID: " + err.Error()
		a.Cause = err
		a.Timeout = errors.Is(err, ErrTimeout)
		return a, id
	}
	id.latency = time.Since(start)
	resp, tries, err = sendRetry(ctx, cfg, dev, netFnApp, cmdGetSystemGUID, o)
	a.Tries += tries - 1
	if err == nil {
		id.UUID, _ = parseSystemGUID(resp)
	}
	a.OK = true
	return a, id
}

// sendRetry sends one command, repeating it after a timeout up to
// cfg.Retries times. tries counts the sends.
func sendRetry(ctx context.Context, cfg Config, dev Device, netfn, cmd uint8, o *Observation) (resp []byte, tries int, err error) {
	for tries < 1+cfg.Retries {
		tries++
		tctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		resp, err = dev.Send(tctx, netfn, cmd, nil, cfg.Timeout)
		cancel()
		if err == nil {
			return resp, tries, nil
		}
		if !tryTimedOut(ctx, err) {
			return nil, tries, err
		}
		o.Timeouts++
		err = fmt.Errorf("%w: no response in %v (%d tries)", ErrTimeout, cfg.Timeout, tries)
	}
	return nil, tries, err
}

// parseDeviceID reads the firmware revision of a Get Device ID response
// (cc, device ID, device revision, firmware major (7 bits), firmware
// minor (BCD), ...).
func parseDeviceID(resp []byte) (string, error) {
	if len(resp) < 1 {
		return "", fmt.Errorf("%w: empty response", ErrBadAnswer)
	}
	if resp[0] != 0 {
		return "", fmt.Errorf("%w: completion code 0x%02x", ErrBadAnswer, resp[0])
	}
	if len(resp) < 5 {
		return "", fmt.Errorf("%w: response of %d bytes", ErrBadAnswer, len(resp))
	}
	return fmt.Sprintf("%d.%02x", resp[3]&0x7f, resp[4]), nil
}

// parseSystemGUID renders a Get System GUID response (cc + 16 bytes) in
// its detected layout, as internal/guid and ipmitool do.
func parseSystemGUID(resp []byte) (string, error) {
	if len(resp) < 17 || resp[0] != 0 {
		return "", fmt.Errorf("%w: system GUID response % x", ErrBadAnswer, resp)
	}
	var g guid.GUID
	copy(g[:], resp[1:17])
	return g.String(), nil
}
