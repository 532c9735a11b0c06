#!/usr/bin/env bash
# The time strata-test adds to a build, in each mode: one image with a
# kernel and systemd (bootstrapped once, then rebuilt from its tarball),
# tested with three checks in container mode and in vm mode. The times
# come from strata-test's report (duration_ms: its run from start to
# verdict; vm mode's boot, QEMU's start to multi-user.target, and the checks
# apart). Rounds: $TEST_ROUNDS (1). Run by
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
# strata-test's report: its whole run, the boot, the checks (seconds), the accelerator.
report() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%.2f %.1f %.2f %s" % (r["duration_ms"]/1000, r.get("boot_ms",0)/1000, r["checks_ms"]/1000, r.get("accel","-")))' "$1"; }

echo "test: building the image (kernel, systemd) ..." >&2
build container "$WORK/test-first.log"
cp "$WORK/tb/output-bench/rootfs.tar.zst" "$WORK/test-rootfs.tar.zst"
declare -a ctr vm vmboot vmchecks ctrchecks
for i in $(seq "$ROUNDS"); do
  build container "$WORK/test-ctr.log" -var archive="$WORK/test-rootfs.tar.zst"
  read -r d _ c _ < <(report "$WORK/tb/output-bench/tests.json"); ctr+=("$d"); ctrchecks+=("$c")
  build vm "$WORK/test-vm.log" -var archive="$WORK/test-rootfs.tar.zst"
  read -r d b c accel < <(report "$WORK/tb/output-bench/tests.json"); vm+=("$d"); vmboot+=("$b"); vmchecks+=("$c")
done
echo
echo "## strata-test: the time it adds to a build (3 checks; median of $ROUNDS, same run)"
printf '| %-44s | %9s | %9s | %9s |\n' "mode" "added s" "boot s" "checks s"
printf '|%s|%s|%s|%s|\n' "----------------------------------------------" "-----------" "-----------" "-----------"
printf '| %-44s | %9s | %9s | %9s |\n' "container (overlay of the layers, chroot)" "$(median "${ctr[@]}")" "-" "$(median "${ctrchecks[@]}")"
printf '| %-44s | %9s | %9s | %9s |\n' "vm ($accel; the disk's kernel booted directly)" "$(median "${vm[@]}")" "$(median "${vmboot[@]}")" "$(median "${vmchecks[@]}")"
echo "(added: strata-test's run from its start to the verdict, as its report records it: mounts or the boot, the checks,"
echo " the teardown; writing the reports and artifact.json adds milliseconds;"
echo " boot: QEMU's start to multi-user.target; checks: the checks alone, as the runner timed them)"
