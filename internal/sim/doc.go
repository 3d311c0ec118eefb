// Package sim runs a fleet of simulated BMCs in one process: thousands of
// IPMI 2.0 (RMCP+, and IPMI 1.5) endpoints on loopback addresses, plus
// enclosure managers fronting blades, with faults injected at start (fleet
// file) or at run time (Go methods, or the HTTP control API).
//
// Each BMC is go-ipmi's reference server (pkg/server) on its own UDP
// socket, with:
//
//   - a hardware layer of its own (simHAL): chassis power and identify LED
//     that survive firmware restarts, sensor readings derived from the BMC's
//     identity and power state, a fleet-wide read-only SDR repository;
//   - handlers go-ipmi lacks or that behave unlike common BMCs: Get System
//     GUID, Get SEL Info / Reserve SEL / Get SEL Entry / Get SEL Time, Get
//     Sensor Reading, Get Chassis Status (identify state), Chassis Control
//     (soft off powers off), IPMI 1.5 Activate Session (the fleet's slot
//     policy; several sessions per account);
//   - a transport (udpConn) between the kernel and the server that applies
//     the network faults, answers some requests itself (Open Session when
//     the slots are full, RAKP 1 for an unknown user), fixes go-ipmi's IPMI
//     1.5 Activate Session reply for FreeIPMI, and keeps the counters.
//
// Everything a BMC is — GUID, vendor and firmware, power state, sensors,
// SEL — is derived from the fleet seed and the BMC's index, so a seed
// names a fleet. Rate faults draw from a per-BMC source seeded the same
// way: a run is reproducible.
//
// See docs/simulator.md for the command, the fleet file and the control
// API.
package sim
