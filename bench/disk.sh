#!/usr/bin/env bash
# Bootable disks: (a) strata's disk export of a tree against systemd-repart
# alone making the same partitions (same sizes) from the same tree, same run;
# (b) boot time of the minimized image against the same image with
# minimize { enabled = false }, median of 3 TCG boots each (strata boot);
# (c) build-to-bootable-disk time against Debian's mkosi, when mkosi can
# build the disk on this host (the script says why not when it cannot).
# Run by bench/run.sh with $WORK, $MIRROR and the plugin installed, or alone
# (as root, after make build).
set -euo pipefail
ROOT=${ROOT:-$PWD}
if [ -z "${WORK:-}" ]; then
  cd "$(dirname "$0")/.." && ROOT=$PWD
  WORK=$(mktemp -d /var/tmp/strata-bench.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
  export CHECKPOINT_DISABLE=1 PACKER_PLUGIN_PATH=$WORK/plugins
  MIRROR=$(go run ./bench/hostmirror)
  bin/packer plugins install --path bin/packer-plugin-strata github.com/strata-build/strata >/dev/null
fi
BOOTS=${DISK_BOOTS:-3}
CACHE=$WORK/disk-cache
now() { date +%s.%N; }
declare -A secs
build() { # name, dir, extra -var args...
  local name=$1 dir=$2; shift 2
  rm -rf "$dir" && mkdir -p "$dir"
  local t0 t1
  t0=$(now)
  (cd "$dir" && "$ROOT/bin/packer" build -force -color=false -var store_dir="$WORK/disk-store" -var cache_dir="$CACHE" \
     -var mirror="$MIRROR" "$@" "$ROOT/bench/disk.pkr.hcl") >"$dir.log" 2>&1 || { tail -30 "$dir.log"; exit 1; }
  t1=$(now)
  secs[$name]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
}
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
field() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

echo "disk: warming the package cache ..." >&2
build "warm-up" "$WORK/disk-full" -var minimize=false -var dir=true
build "strata, minimize off" "$WORK/disk-full" -var minimize=false -var dir=true
build "strata, minimized (default)" "$WORK/disk-min"

# (a) The export alone, on the unminimized tree.
TREE=$WORK/disk-full/output-bench/rootfs
echo
echo "## disk export of a bookworm minbase + linux-image-cloud-amd64 + systemd-sysv tree ($(du -sh "$TREE" | cut -f1)), same sizes"
echo "(DiskStrata: strata's disk format: ESP by mkfs.vfat + mtools, ext4 root by mke2fs -d, GPT by sfdisk, sha256 of disk.raw and"
echo " the rootfs digest; DiskRepart: systemd-repart $(systemd-repart --version | awk 'NR == 1 { print $2 }') alone, Format=vfat/ext4 and CopyFiles= for the same"
echo " two partitions, then sha256sum; DiskRepartRootOnly: systemd-repart making the ext4 root partition only; the ratio is"
echo " against the first row)"
if STRATA_BENCH_TREE=$TREE go test -run '^$' -bench 'Disk' -benchtime 2x -count 1 ./bench/ >"$WORK/disk-bench.txt" 2>&1; then
  go run ./bench/table "$WORK/disk-bench.txt"
else
  cat "$WORK/disk-bench.txt" | grep -v '^\s*$' | tail -15
  grep -q 'BenchmarkDiskStrata.*ns/op' "$WORK/disk-bench.txt" && go run ./bench/table "$WORK/disk-bench.txt"
  echo "(a systemd-repart row failed on this host: its error is above; systemd 252 populates a partition by mounting it"
  echo " through a loop device, and a host without the vfat module refuses the ESP's mount)"
fi

# (b) Boot time, minimized against not.
declare -A boot total size bs ts
for v in min full; do
  disk=$WORK/disk-$v/output-bench/disk.raw
  size[$v]=$(du -B1 --apparent-size "$disk" | awk '{ printf "%.0f", $1 / 1048576 }')/$(du -B1 "$disk" | awk '{ printf "%.0f", $1 / 1048576 }')
done
# The two images boot in turn, so a change in the host's load falls on both.
for i in $(seq "$BOOTS"); do
  for v in min full; do
    echo "disk: booting $v $i/$BOOTS under TCG ..." >&2
    out=$("$ROOT/bin/strata" --json boot --accel tcg --timeout 10m "$WORK/disk-$v/output-bench/disk.raw")
    bs[$v]+="$(field boot_time_ms <<<"$out") " ts[$v]+="$(field total_ms <<<"$out") "
    src=$(field boot_time_source <<<"$out")
  done
done
for v in min full; do
  read -ra b <<<"${bs[$v]}"; read -ra t <<<"${ts[$v]}"
  boot[$v]="$(median "${b[@]}") (${b[*]})"
  total[$v]="$(median "${t[@]}") (${t[*]})"
done
echo
echo "## boot time under TCG (strata boot --accel tcg; median of $BOOTS, each boot in brackets; ms)"
echo "(boot: kernel start to multi-user.target, from $src; total: QEMU start to multi-user.target, firmware included)"
printf '| %-28s | %-26s | %-26s | %-18s |\n' "image" "boot ms" "total ms" "disk MiB (apparent/used)"
printf '|%s|%s|%s|%s|\n' "------------------------------" "----------------------------" "----------------------------" "--------------------"
printf '| %-28s | %-26s | %-26s | %-18s |\n' "minimized (default)" "${boot[min]}" "${total[min]}" "${size[min]}"
printf '| %-28s | %-26s | %-26s | %-18s |\n' "minimize { enabled = false }" "${boot[full]}" "${total[full]}" "${size[full]}"

# (c) Build to bootable disk: mkosi, when it can.
echo
echo "## build to a bootable disk (bookworm minbase + linux-image-cloud-amd64 + systemd-sysv, warm cache for strata)"
printf '| %-40s | %9s |\n' "tool" "seconds"
printf '|%s|%s|\n' "------------------------------------------" "-----------"
printf '| %-40s | %9s |\n' "strata packer build, minimized, disk" "${secs["strata, minimized (default)"]}"
printf '| %-40s | %9s |\n' "strata packer build, not minimized, disk+dir" "${secs["strata, minimize off"]}"
if ! command -v mkosi >/dev/null; then
  echo "(mkosi: not installed; apt-get install mkosi to compare)"
else
  mk=$WORK/mkosi
  mkdir -p "$mk"
  cat >"$mk/mkosi.conf" <<CONF
[Distribution]
Distribution=debian
Release=bookworm

[Output]
Format=gpt_ext4
Bootable=yes
OutputDirectory=out

[Content]
Packages=linux-image-cloud-amd64 systemd-sysv
CONF
  t0=$(now)
  if (cd "$mk" && timeout 1800 mkosi --mirror="$MIRROR" -f build) >"$mk.log" 2>&1; then
    t1=$(now)
    printf '| %-40s | %9s |\n' "mkosi $(mkosi --version | awk '{ print $2 }') (gpt_ext4, Bootable=yes)" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')"
  else
    why=$(grep -E '^(mount|mkosi|losetup|.*Error)' "$mk.log" | grep -v '^\s*$' | head -3 | tr '\n' ' ')
    echo "(mkosi $(mkosi --version | awk '{ print $2 }') could not build the disk on this host: $why"
    echo " mkosi 14, Debian bookworm's, builds a disk by attaching it as a loop device and mounting its partitions (the ESP as"
    echo " vfat) on the host; strata makes the partitions as files and mounts nothing. No mkosi row.)"
  fi
fi
