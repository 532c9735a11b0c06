#!/usr/bin/env bash
# Prints comparison tables. Needs root, bin/packer and bin/packer-plugin-strata
# (make bench builds them) and the host's Debian mirror.
#   1. bookworm minbase as tar.zst: strata-chroot through `packer build`, cold
#      (empty package cache) and warm, against mmdebstrap alone writing the
#      same format from the same mirror, in the same run. Like with like:
#      strata runs with minimize off here, as mmdebstrap does not slim;
#      minimized images are compared with slimmed mmdebstrap in table 5.
#   2. exporting that tree as tar.zst: strata's exporter against `tar | zstd`,
#      and as squashfs against mksquashfs (each row says what it includes).
#   3. layers, 4. the package cache, 5. image size with minimize, 6. the catalog (6b. strata serve),
#   7. bootable disks: export against systemd-repart, boot time minimized or not, mkosi.
#   8. strata-test: the time it adds to a build in container and vm mode.
#   9. registry: a child's push (base already there) against the full push, a pull against skopeo copy.
#   10. a foreign architecture (arm64 through qemu-user) against amd64, and how much of it is emulation.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
REPS=${BENCH_REPS:-2}
WORK=$(mktemp -d /var/tmp/strata-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export CHECKPOINT_DISABLE=1 PACKER_PLUGIN_PATH=$WORK/plugins
MIRROR=$(go run ./bench/hostmirror)
HOOKS=/usr/share/mmdebstrap/hooks/merged-usr

bin/packer plugins install --path bin/packer-plugin-strata github.com/strata-build/strata >/dev/null

now() { date +%s.%N; }
declare -A total count size

measure() { # name, command...
  local name=$1; shift
  local t0 t1
  t0=$(now)
  "$@" >"$WORK/last.log" 2>&1 || { echo "FAILED: $name"; tail -20 "$WORK/last.log"; exit 1; }
  t1=$(now)
  total[$name]=$(awk -v a="${total[$name]:-0}" -v s="$t0" -v e="$t1" 'BEGIN { printf "%.3f", a + e - s }')
  count[$name]=$(( ${count[$name]:-0} + 1 ))
}

strata_build() { # cache dir, row name
  rm -rf "$WORK/run" && mkdir -p "$WORK/run"
  (cd "$WORK/run" && "$ROOT/bin/packer" build -force -color=false \
     -var store_dir="$WORK/store" -var cache_dir="$1" -var mirror="$MIRROR" -var minimize=false "$ROOT/bench/bootstrap.pkr.hcl")
  size[$2]=$(stat -c %s "$WORK/run/output-bench/rootfs.tar.zst")
}

mmdebstrap_tar() { # extra args...
  rm -f "$WORK/mm.tar.zst"
  mmdebstrap --mode=root --variant=minbase "$@" bookworm "$WORK/mm.tar.zst" "$MIRROR"
}

for i in $(seq "$REPS"); do
  echo "round $i/$REPS ..." >&2
  measure "mmdebstrap minbase, merged-usr hooks" mmdebstrap_tar --hook-dir=$HOOKS
  size["mmdebstrap minbase, merged-usr hooks"]=$(stat -c %s "$WORK/mm.tar.zst")
  mm_entries=$(tar -tf "$WORK/mm.tar.zst" | wc -l)
  measure "mmdebstrap minbase, plain" mmdebstrap_tar
  size["mmdebstrap minbase, plain"]=$(stat -c %s "$WORK/mm.tar.zst")
  rm -rf "$WORK/cold-cache"
  measure "strata packer build, cold cache" strata_build "$WORK/cold-cache" "strata packer build, cold cache"
  measure "strata packer build, warm cache" strata_build "$WORK/cold-cache" "strata packer build, warm cache"
  strata_entries=$(tar -tf "$WORK/run/output-bench/rootfs.tar.zst" | wc -l)
done

base="mmdebstrap minbase, merged-usr hooks"
avg() { awk -v t="${total[$1]}" -v n="${count[$1]}" 'BEGIN { printf "%.2f", t / n }'; }
div() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
b=$(avg "$base")
echo
echo "## bookworm minbase -> tar.zst, not minimized (mean of $REPS, same mirror, same run)"
printf '| %-40s | %9s | %9s | %14s |\n' "tool" "seconds" "ratio" "tar.zst MiB"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..42})" "-----------" "-----------" "----------------"
for name in "$base" "mmdebstrap minbase, plain" "strata packer build, cold cache" "strata packer build, warm cache"; do
  a=$(avg "$name")
  printf '| %-40s | %9s | %8sx | %14s |\n' "$name" "$a" "$(div "$a" "$b")" "$(div "${size[$name]}" 1048576)"
done
echo "(strata with minimize { enabled = false }, as mmdebstrap does not slim: $strata_entries tar entries against mmdebstrap's $mm_entries;"
echo " the minimized image is compared with a slimmed mmdebstrap in the image size table)"

# 2. Export: strata's single-pass exporter against tar | zstd on the same tree.
TREE=$WORK/tree
mkdir -p "$TREE"
tar -C "$TREE" -xpf "$WORK/run/output-bench/rootfs.tar.zst" --numeric-owner --xattrs --xattrs-include='*'
echo
echo "## export of that tree (the unminimized minbase, $(du -sh "$TREE" | cut -f1)) as tar.zst"
echo "(ExportStrataTarZst: one pass writing the canonical tar, zstd level 3, the sha256 of the tar.zst and the rootfs digest"
echo " (the sha256 of the uncompressed tar); ExportTarPipeZstd: GNU tar | zstd -3, then sha256sum of the tar.zst only)"
STRATA_BENCH_TREE=$TREE go test -run '^$' -bench 'Export' -benchtime "${REPS}x" -count 1 ./bench/ | tee "$WORK/bench.txt" >&2
go run ./bench/table "$WORK/bench.txt"
echo
echo "## the same tree as squashfs"
echo "(SquashfsStrataDefault: mksquashfs -comp zstd level 3, alongside it the canonical tar pass that computes the rootfs digest,"
echo " then the sha256 of the squashfs file; SquashfsPipeMksquashfs: mksquashfs at level 3, then sha256sum;"
echo " SquashfsMksquashfsDefaultLevel: mksquashfs at its own default level 15, then sha256sum)"
STRATA_BENCH_TREE=$TREE go test -run '^$' -bench 'Squashfs' -benchtime "${REPS}x" -count 1 ./bench/ | tee "$WORK/squashfs.txt" >&2
go run ./bench/table "$WORK/squashfs.txt"

# 3. Layers: a child build against the full rebuild of the same result.
ROOT=$ROOT WORK=$WORK MIRROR=$MIRROR bash bench/layers.sh
# 3b. A no-op child against Packer's own null builder: strata's own cost.
ROOT=$ROOT WORK=$WORK MIRROR=$MIRROR bash bench/noop.sh

# 4. The package cache: cold and warm, a fast and a throttled mirror, two at once.
ROOT=$ROOT WORK=$WORK MIRROR=$MIRROR bash bench/cache.sh

# 5. Image size: minimize against mmdebstrap's own slimming.
ROOT=$ROOT WORK=$WORK MIRROR=$MIRROR bash bench/minimize.sh

# 6. The catalog: promote/rollback latency and listing on 10,000 versions.
go run ./bench/catalogbench

# 6b. strata serve: pollers on the channel endpoint and the lineage page against the CLI.
ROOT=$ROOT bash bench/serve.sh

# 7. Bootable disks: export against systemd-repart, boot time minimized or not, mkosi.
ROOT=$ROOT WORK=$WORK MIRROR=$MIRROR bash bench/disk.sh

# 8. strata-test: the time it adds to a build, container and vm mode (boot and checks apart).
ROOT=$ROOT WORK=$WORK MIRROR=$MIRROR bash bench/test.sh

# 9. Registry transport: child push against the full push, pull against skopeo copy.
ROOT=$ROOT WORK=$WORK MIRROR=$MIRROR bash bench/registry.sh

# 10. A foreign architecture: arm64 minbase against amd64, cold and warm, and the emulated share.
ROOT=$ROOT WORK=$WORK MIRROR=$MIRROR bash bench/arch.sh
