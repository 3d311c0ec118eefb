package sim

import (
	"context"

	"github.com/bougou/go-ipmi/pkg/handlers"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Standard IPMI bridging on an enclosure manager: Send Message (App 34h) to
// a blade's controller on the manager's IPMB, at 0x80 + 2·slot (slot 1 at
// 0x82, the ATCA convention an inventory's ipmb rule "0x82+2" names). The
// simulator answers inside the Send Message response (the IPMB response
// frame as its data), as some BMCs do; OpenIPMI's ipmi_sim sends it as a
// second message instead, and lightsout takes either. A blade whose BMC
// does not answer the manager (silent, em_link) NAKs its address (0x83).
// Blades answer Get Device ID and, as chassis devices, Get Chassis Status;
// anything else 0xC1 from the blade.

const (
	ccNAKOnWrite types.CompletionCode = 0x83
)

func ipmbChecksum(b []byte) byte {
	var s byte
	for _, c := range b {
		s += c
	}
	return -s
}

// ipmbRequest is the IPMB request frame a Send Message carries.
type ipmbRequest struct {
	target, netFn, rqSA, rqSeq, cmd byte
	data                            []byte
}

// parseSendMessage reads Send Message's request data: [channel and
// tracking bits, rsSA, netFn/rsLUN, checksum, rqSA, rqSeq/rqLUN, cmd,
// data…, checksum], on the primary IPMB (channel 0) only.
func parseSendMessage(req []byte) (ipmbRequest, types.CompletionCode) {
	if len(req) < 8 {
		return ipmbRequest{}, ccRequestTruncated
	}
	if req[0]&0x0f != 0 {
		return ipmbRequest{}, ccInvalidField
	}
	f := req[1:]
	if ipmbChecksum(f[0:2]) != f[2] || ipmbChecksum(f[3:len(f)-1]) != f[len(f)-1] {
		return ipmbRequest{}, ccInvalidField
	}
	return ipmbRequest{target: f[0], netFn: f[1] >> 2, rqSA: f[3], rqSeq: f[4] >> 2, cmd: f[5], data: f[6 : len(f)-1]}, ccOK
}

// handleSendMessage: request [channel | tracking bits, IPMB request frame];
// response the blade's IPMB response frame.
func handleSendMessage(_ context.Context, hctx *handlers.HandlerContext, req []byte) ([]byte, types.CompletionCode, error) {
	em := simOf(hctx.BMC.HAL())
	if em == nil || em.kind != KindEnclosureManager || em.encl == nil {
		return nil, ccInvalidCommand, nil
	}
	r, rc := parseSendMessage(req)
	if rc != ccOK {
		return nil, rc, nil
	}
	target, netFn, rqSA, rqSeq, cmd := r.target, r.netFn, r.rqSA, r.rqSeq, r.cmd
	slot := (int(target) - 0x80) / 2
	if target&1 != 0 || slot < 1 || slot > len(em.encl.blades) {
		return nil, ccNAKOnWrite, nil
	}
	blade := em.encl.blades[slot-1]
	if !blade.answersEM() {
		return nil, ccNAKOnWrite, nil
	}
	var data []byte
	cc := byte(0)
	switch {
	case netFn == 0x06 && cmd == 0x01: // Get Device ID
		d := blade.vendor.deviceInfo()
		data = []byte{byte(slot), d.DeviceRevision, d.FirmwareMajor & 0x7f, d.FirmwareMinor, d.IPMIVersion, d.AdditionalDeviceSupport,
			byte(d.ManufacturerID), byte(d.ManufacturerID >> 8), byte(d.ManufacturerID >> 16), byte(d.ProductID), byte(d.ProductID >> 8)}
	case netFn == 0x00 && cmd == 0x01: // Get Chassis Status
		p := byte(0)
		if blade.power.Load() {
			p = 0x01
		}
		data = []byte{p, 0x00, 0x40 | blade.identifyState()<<4}
	default:
		cc = byte(ccInvalidCommand)
	}
	rsp := []byte{rqSA, (netFn | 1) << 2, 0, target, rqSeq << 2, cmd, cc}
	rsp[2] = ipmbChecksum(rsp[0:2])
	rsp = append(rsp, data...)
	rsp = append(rsp, ipmbChecksum(rsp[3:]))
	return rsp, ccOK, nil
}
