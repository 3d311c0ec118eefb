#!/usr/bin/env bash
# Installs the third-party peers the tests talk to, when they are missing and
# we are root. Never fails the build: tests that need a missing peer skip with
# a reason (or fail when LIGHTSOUT_REQUIRE_PEERS=1).
set -u
need=()
command -v ipmi_sim  >/dev/null 2>&1 || need+=(openipmi)
command -v ipmitool  >/dev/null 2>&1 || need+=(ipmitool)
command -v ipmipower >/dev/null 2>&1 || need+=(freeipmi-tools)
# The web console's browser tests drive headless Chromium (chromedp).
command -v chromium  >/dev/null 2>&1 || need+=(chromium)
# promtool checks and unit-tests the alerting rules in deploy/prometheus.
command -v promtool  >/dev/null 2>&1 || need+=(prometheus)
# The store tests run a throwaway PostgreSQL cluster from the package's
# binaries (internal/store/pgtest); LIGHTSOUT_TEST_POSTGRES overrides.
if [ -z "${LIGHTSOUT_TEST_POSTGRES:-}" ] && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
   && ! command -v initdb >/dev/null 2>&1; then
  need+=(postgresql)
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
