#!/usr/bin/env bash
# The time strata-test adds to a build, in each mode: one image with a
# kernel and systemd (bootstrapped once, then rebuilt from its tarball),
# tested with three checks in container mode and in vm mode. The time is
# Packer's own (-timestamp-ui) from "Running post-processor" to the end of
# the build; vm mode's boot (QEMU's start to multi-user.target) and checks
# come from strata-test's report. Rounds: $TEST_ROUNDS (1). Run by
# bench/run.sh, or alone: ROOT=$PWD WORK=$(mktemp -d) MIRROR=... bash bench/test.sh
# (with the plugin installed for Packer).
set -euo pipefail
ROOT=${ROOT:-$PWD}
ROUNDS=${TEST_ROUNDS:-1}
STORE=$WORK/test-store
CACHE=$WORK/test-cache
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
build() { # mode, log, extra args...
  local mode=$1 log=$2; shift 2
  rm -rf "$WORK/tb" && mkdir -p "$WORK/tb"
  (cd "$WORK/tb" && "$ROOT/bin/packer" build -force -color=false -timestamp-ui -var store_dir="$STORE" -var cache_dir="$CACHE" \
     -var mirror="$MIRROR" -var mode="$mode" "$@" "$ROOT/bench/test.pkr.hcl") >"$log" 2>&1 || { tail -40 "$log"; exit 1; }
}
# Seconds from strata-test's start to the build's end, from Packer's timestamps.
pp_seconds() {
  python3 - "$1" <<'PY'
import re, sys
from datetime import datetime
start = end = None
for l in open(sys.argv[1]):
    m = re.match(r'(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z?)', l)
    if not m:
        continue
    t = datetime.fromisoformat(m.group(1).rstrip('Z'))
    if 'Running post-processor' in l and 'strata-test' in l and start is None:
        start = t
    end = t
print('%.1f' % (end - start).total_seconds())
PY
}
report() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%.1f %.1f %s" % (r.get("boot_ms",0)/1000, r["checks_ms"]/1000, r.get("accel","-")))' "$1"; }

echo "test: building the image (kernel, systemd) ..." >&2
build container "$WORK/test-first.log"
cp "$WORK/tb/output-bench/rootfs.tar.zst" "$WORK/test-rootfs.tar.zst"
declare -a ctr vm vmboot vmchecks ctrchecks
for i in $(seq "$ROUNDS"); do
  build container "$WORK/test-ctr.log" -var archive="$WORK/test-rootfs.tar.zst"
  ctr+=("$(pp_seconds "$WORK/test-ctr.log")")
  read -r _ c _ < <(report "$WORK/tb/output-bench/tests.json"); ctrchecks+=("$c")
  build vm "$WORK/test-vm.log" -var archive="$WORK/test-rootfs.tar.zst"
  vm+=("$(pp_seconds "$WORK/test-vm.log")")
  read -r b c accel < <(report "$WORK/tb/output-bench/tests.json"); vmboot+=("$b"); vmchecks+=("$c")
done
echo
echo "## strata-test: the time it adds to a build (3 checks; median of $ROUNDS, same run)"
printf '| %-44s | %9s | %9s | %9s |\n' "mode" "added s" "boot s" "checks s"
printf '|%s|%s|%s|%s|\n' "----------------------------------------------" "-----------" "-----------" "-----------"
printf '| %-44s | %9s | %9s | %9s |\n' "container (overlay of the layers, chroot)" "$(median "${ctr[@]}")" "-" "$(median "${ctrchecks[@]}")"
printf '| %-44s | %9s | %9s | %9s |\n' "vm ($accel; the disk's kernel booted directly)" "$(median "${vm[@]}")" "$(median "${vmboot[@]}")" "$(median "${vmchecks[@]}")"
echo "(added: Packer's timestamps from strata-test's start to the build's end, reports and artifact.json included;"
echo " boot: QEMU's start to multi-user.target; checks: the checks alone, as the runner timed them)"
