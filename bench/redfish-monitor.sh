#!/usr/bin/env bash
# Rough measurement of the server's CPU per Redfish check (the stand-in for
# a `bench/monitor --redfish` that does not exist yet; docs/redfish.md):
# N simulated BMCs serving Redfish (simulator on CPU 0), `lightsout server`
# checking them every INTERVAL (server on CPU 1), a WINDOW of CPU (from
# /proc) and checks (lightsout_checks_total) after WARMUP. IPMI=1 imports
# the same BMCs as IPMI accounts, for the comparison. Needs root (one
# loopback address per BMC, port 443/623).
#   N=2000 INTERVAL=10s bench/redfish-monitor.sh
#   IPMI=1 N=2000 INTERVAL=10s bench/redfish-monitor.sh
set -euo pipefail
N=${N:-2000} INTERVAL=${INTERVAL:-10s} WARMUP=${WARMUP:-45} WINDOW=${WINDOW:-60}
BASE=${BASE:-127.180.0.1} LISTEN=${LISTEN:-127.0.0.1:19899}
cd "$(dirname "$0")/.."
dir=$(mktemp -d "${TMPDIR:-/tmp}/redfish-monitor.XXXXXX")
trap 'kill ${SRV:-} ${SIM:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
ulimit -n 20000
go build -o "$dir/lightsout" ./cmd/lightsout
head -c 12 /dev/urandom | base64 | tr -d '/+=' > "$dir/pw"; chmod 600 "$dir/pw"
taskset -c 0 "$dir/lightsout" sim --count "$N" --redfish --base-addr "$BASE" --password-file "$dir/pw" \
	--control "" --export-inventory "$dir/fleet.yaml" > "$dir/sim.log" 2>&1 &
SIM=$!
for _ in $(seq 1 120); do grep -q ready "$dir/sim.log" && break; sleep 1; done
if [ -n "${IPMI:-}" ]; then sed -i -e '/protocol: redfish/d' -e 's/port: 443/port: 623/' "$dir/fleet.yaml"; fi
taskset -c 1 "$dir/lightsout" server --data "$dir/data" --listen "$LISTEN" --interval "$INTERVAL" --audit-every 0 > "$dir/server.log" 2>&1 &
SRV=$!
for _ in $(seq 1 60); do [ -f "$dir/data/admin.token" ] && curl -s -o /dev/null "http://$LISTEN/metrics" && break; sleep 1; done
"$dir/lightsout" import "$dir/fleet.yaml" --server "http://$LISTEN" --token-file "$dir/data/admin.token"
sleep "$WARMUP"
cpu() { awk '{print $14+$15}' "/proc/$SRV/stat"; }
checks() { curl -s "http://$LISTEN/metrics" | awk '/^lightsout_checks_total/ {s+=$2} END {print s+0}'; }
c0=$(cpu) k0=$(checks)
sleep "$WINDOW"
c1=$(cpu) k1=$(checks)
hz=$(getconf CLK_TCK)
awk -v c="$((c1 - c0))" -v hz="$hz" -v k="$((k1 - k0))" -v w="$WINDOW" \
	'BEGIN { printf "%d checks in %d s; server CPU %.2f s (%.1f%% of one core), %.0f µs per check\n", k, w, c/hz, 100*c/hz/w, c/hz*1e6/k }'
echo "server: $(ls "/proc/$SRV/fd" | wc -l) file descriptors, RSS $(awk '/VmRSS/ {print $2}' "/proc/$SRV/status") kB"
curl -s "http://$LISTEN/metrics" | grep -E '^lightsout_channels\{kind="oob"' || true
