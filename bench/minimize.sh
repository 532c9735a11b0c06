#!/usr/bin/env bash
# Image size: bookworm minbase as strata-chroot makes it with and without
# minimize, against mmdebstrap alone slimmed the way its manual shows
# (dpkg path-exclude options, apt lists removed), and against the
# unminimized mmdebstrap tree. Sizes are `du -s --apparent-size` of the
# unpacked tree, the measure debian:bookworm-slim's 74.8 MB is given in.
# Run by bench/run.sh with $WORK, $MIRROR and the plugin installed.
set -euo pipefail
ROOT=${ROOT:-$PWD}
CACHE=$WORK/min-cache
now() { date +%s.%N; }
declare -A secs mb entries
measure_tree() { # name, tarball
  local tree=$WORK/min-tree
  rm -rf "$tree" && mkdir -p "$tree"
  tar -C "$tree" -xpf "$2" --numeric-owner
  mb[$1]=$(du -s --apparent-size -B1 "$tree" | awk '{ printf "%.1f", $1 / 1e6 }')
  entries[$1]=$(find "$tree" | wc -l)
  rm -rf "$tree"
}
strata() { # name, minimize
  local dir=$WORK/min-run
  rm -rf "$dir" && mkdir -p "$dir"
  local t0 t1
  t0=$(now)
  (cd "$dir" && "$ROOT/bin/packer" build -force -color=false -var store_dir="$WORK/min-store" -var cache_dir="$CACHE" \
     -var mirror="$MIRROR" -var minimize="$2" "$ROOT/bench/bootstrap.pkr.hcl") >"$dir.log" 2>&1 || { tail -30 "$dir.log"; exit 1; }
  t1=$(now)
  secs[$1]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  measure_tree "$1" "$dir/output-bench/rootfs.tar.zst"
  grep -E "Minimized in|removed: " "$dir.log" | sed 's/^ */  /' >&2 || true
}
mm() { # name, extra args...
  local name=$1; shift
  local t0 t1
  t0=$(now)
  mmdebstrap --mode=root --variant=minbase --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr "$@" bookworm "$WORK/min-mm.tar" "$MIRROR" >"$WORK/min-mm.log" 2>&1 \
    || { tail -20 "$WORK/min-mm.log"; exit 1; }
  t1=$(now)
  secs[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  measure_tree "$name" "$WORK/min-mm.tar"
}

echo "minimize: warming the package cache ..." >&2
strata "strata, minimize off" false
strata "strata, minimize off" false
strata "strata, minimized (default)" true
mm "mmdebstrap minbase"
mm "mmdebstrap minbase + dpkg path-exclude" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*.log "$1"/var/log/apt/*'

echo
echo "## bookworm minbase size (du -s --apparent-size of the unpacked image; debian:bookworm-slim: 74.8 MB; goal <= 70 MB)"
printf '| %-42s | %8s | %8s | %8s |\n' "image" "MB" "entries" "seconds"
printf '|%s|%s|%s|%s|\n' "--------------------------------------------" "----------" "----------" "----------"
for n in "mmdebstrap minbase" "mmdebstrap minbase + dpkg path-exclude" "strata, minimize off" "strata, minimized (default)"; do
  printf '| %-42s | %8s | %8s | %8s |\n' "$n" "${mb[$n]}" "${entries[$n]}" "${secs[$n]}"
done
echo "(strata times are warm-cache packer builds; mmdebstrap fetches from the mirror directly)"
