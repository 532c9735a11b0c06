#!/usr/bin/env bash
# A no-op child (parent image, no provisioner, output none and dir) against `packer
# build` of Packer's own null builder with the same template shape: the
# cost of strata itself over Packer's. Medians of $NOOP_ROUNDS (5). Run by
# bench/run.sh after bench/layers.sh (it reuses that base image, or builds
# one), with $WORK and the plugin installed.
set -euo pipefail
ROOT=${ROOT:-$PWD}
ROUNDS=${NOOP_ROUNDS:-5}
STORE=$WORK/layers-store
CACHE=$WORK/layers-cache
now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
if [ ! -f "$WORK/lbase/output-bench/artifact.json" ]; then
  echo "noop: building the base image ..." >&2
  mkdir -p "$WORK/lbase"
  (cd "$WORK/lbase" && "$ROOT/bin/packer" build -force -color=false -var store_dir="$STORE" -var cache_dir="$CACHE" \
     -var mirror="$MIRROR" -var base_only=true "$ROOT/bench/layers.pkr.hcl") >"$WORK/lbase.log" 2>&1 || { tail -30 "$WORK/lbase.log"; exit 1; }
fi
BASE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["image_id"])' "$WORK/lbase/output-bench/artifact.json")
declare -a noop none null
# Each build runs in a directory of its own, removed after all rounds: a
# round that deletes the last round's 4,000-file dir output first pays for
# that deletion in the builds right after it on some file systems (ext4
# without a journal, mounted with discard: rounds grew 1.6 -> 2.6 s), which is
# not strata's cost.
noop_build() { # format, log, dir
  mkdir -p "$3"
  (cd "$3" && "$ROOT/bin/packer" build -force -color=false -var store_dir="$STORE" -var cache_dir="$CACHE" \
     -var parent="$BASE" -var "formats=[\"$1\"]" "$ROOT/bench/noop.pkr.hcl") >"$2" 2>&1 || { tail -30 "$2"; exit 1; }
}
for i in $(seq "$ROUNDS"); do
  t0=$(now); noop_build dir "$WORK/noop.log" "$WORK/noop-dir-$i"; t1=$(now)
  noop+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
  t0=$(now); noop_build none "$WORK/noop-none.log" "$WORK/noop-none-$i"; t1=$(now)
  none+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
  t0=$(now)
  mkdir -p "$WORK/noop-null"
  (cd "$WORK/noop-null" && "$ROOT/bin/packer" build -force -color=false "$ROOT/bench/null.pkr.hcl") >"$WORK/null.log" 2>&1 || { tail -30 "$WORK/null.log"; exit 1; }
  t1=$(now)
  null+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')")
done
rm -rf "$WORK"/noop-dir-* "$WORK"/noop-none-* "$WORK/noop-null"
mn=$(median "${noop[@]}"); mu=$(median "${null[@]}"); mo=$(median "${none[@]}")
echo
echo "## no-op child (parent, no provisioner, output none or dir) vs Packer's null builder (median of $ROUNDS, same run; goal <= 1.0 s over null)"
printf '| %-40s | %9s | %12s |\n' "build" "seconds" "over null"
printf '|%s|%s|%s|\n' "------------------------------------------" "-----------" "--------------"
printf '| %-40s | %9s | %12s |\n' "packer build, null builder" "$mu" "-"
printf '| %-40s | %9s | %11ss |\n' "strata-chroot no-op child, formats none" "$mo" "$(awk -v a="$mo" -v b="$mu" 'BEGIN { printf "%.3f", a - b }')"
printf '| %-40s | %9s | %11ss |\n' "strata-chroot no-op child, formats dir" "$mn" "$(awk -v a="$mn" -v b="$mu" 'BEGIN { printf "%.3f", a - b }')"
echo "rounds: none ${none[*]}; dir ${noop[*]}; null ${null[*]}"
grep -h "strata: step times" "$WORK/noop-none.log" | sed 's/^.*strata: /  last no-op child, none: /' || true
grep -h "strata: step times" "$WORK/noop.log" | sed 's/^.*strata: /  last no-op child, dir: /' || true
