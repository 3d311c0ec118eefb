#!/usr/bin/env bash
# Installs the third-party peers the tests talk to, when they are missing and
# we are root. Never fails the build: tests that need a missing peer skip with
# a reason (or fail when LIGHTSOUT_REQUIRE_PEERS=1).
set -u
need=()
command -v ipmi_sim  >/dev/null 2>&1 || need+=(openipmi)
command -v ipmitool  >/dev/null 2>&1 || need+=(ipmitool)
command -v ipmipower >/dev/null 2>&1 || need+=(freeipmi-tools)
# pyghmi's BMC (the IPMI server inside OpenStack virtualbmc), run by Debian's
# /usr/bin/python3 (internal/peertest.StartPyghmi).
/usr/bin/python3 -c 'import pyghmi.ipmi.bmc' >/dev/null 2>&1 || need+=(python3-pyghmi)
# The web console's browser tests drive headless Chromium (chromedp).
command -v chromium  >/dev/null 2>&1 || need+=(chromium)
# promtool checks and unit-tests the alerting rules in deploy/prometheus.
command -v promtool  >/dev/null 2>&1 || need+=(prometheus)
# DMTF's redfishtool, run against the simulator (sim.TestRedfishtool).
command -v redfishtool >/dev/null 2>&1 || need+=(redfishtool)
# The store tests run a throwaway PostgreSQL cluster from the package's
# binaries (internal/store/pgtest); LIGHTSOUT_TEST_POSTGRES overrides.
if [ -z "${LIGHTSOUT_TEST_POSTGRES:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
   && ! command -v initdb >/dev/null 2>&1; then
  need+=(postgresql)
fi
# The Redfish peers ($LIGHTSOUT_PEERS_DIR, default ../shared/peers: sushy-tools,
# DMTF's mockup server and protocol validator) run from source on Debian's
# Python modules.
if command -v dpkg-query >/dev/null 2>&1; then
  for p in python3 openssl curl ca-certificates procps \
    python3-flask python3-werkzeug python3-requests python3-tenacity python3-bcrypt python3-webob \
    python3-urllib3 python3-colorama python3-pyasn1 python3-pyasn1-modules; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || need+=("$p")
  done
fi
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-deps: missing ${need[*]} (not root or no apt-get): those tests will skip" >&2
  exit 0
fi
echo "install-test-deps: installing ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || echo "install-test-deps: apt-get install ${need[*]} failed: those tests will skip" >&2
exit 0
