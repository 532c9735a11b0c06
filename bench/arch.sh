#!/usr/bin/env bash
# A foreign architecture on this host: bookworm minbase for arm64 (through
# qemu-user, binfmt_misc F flag) against amd64, both through `packer build`
# with one package cache: cold (the first build of each architecture; arm64
# finds the `all` packages amd64 fetched) and warm (the rebuild). And how
# much of a warm arm64 bootstrap is emulation: mmdebstrap --variant=extract
# (packages unpacked by the host's own tools, no dpkg run in the image, no
# maintainer script) against minbase (dpkg and every maintainer script run
# emulated), per architecture. Medians of $ARCH_ROUNDS (1). Run by
# bench/run.sh, or alone: ROOT=$PWD WORK=$(mktemp -d) MIRROR=... bash bench/arch.sh
set -euo pipefail
ROOT=${ROOT:-$PWD}
ROUNDS=${ARCH_ROUNDS:-1}
CACHE=$WORK/arch-cache
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
now() { date +%s.%N; }
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }
build() { # architecture
  rm -rf "$WORK/ab" "$WORK/arch-store" && mkdir -p "$WORK/ab"
  local t0; t0=$(now)
  (cd "$WORK/ab" && "$ROOT/bin/packer" build -force -color=false -var store_dir="$WORK/arch-store" -var cache_dir="$CACHE" \
     -var mirror="$MIRROR" -var architecture="$1" "$ROOT/bench/arch.pkr.hcl") >"$WORK/arch-$1.log" 2>&1 || { tail -40 "$WORK/arch-$1.log"; exit 1; }
  elapsed "$t0"
}
mm() { # architecture, variant (both download the same packages from the mirror)
  rm -rf "$WORK/mm-arch"
  local t0; t0=$(now)
  mmdebstrap --mode=root --quiet --variant="$2" --architectures="$1" --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    bookworm "$WORK/mm-arch" "$MIRROR" >"$WORK/mm-arch.log" 2>&1 || { tail -20 "$WORK/mm-arch.log" >&2; exit 1; }
  elapsed "$t0"
  rm -rf "$WORK/mm-arch"
}
declare -a amd_cold arm_cold amd_warm arm_warm
rm -rf "$CACHE"
echo "arch: cold builds ..." >&2
amd_cold+=("$(build amd64)")
arm_cold+=("$(build arm64)")
for i in $(seq "$ROUNDS"); do
  echo "arch: warm round $i/$ROUNDS ..." >&2
  amd_warm+=("$(build amd64)")
  arm_warm+=("$(build arm64)")
done
# The bootstrap step's time from the build log, as seconds (Go prints 1m10.5s).
bootstrapped() { sed -n 's/.*Bootstrapped bookworm in \([0-9hms.]*\): .*/\1/p' "$1" | tail -1 |
  awk '{ s = 0; n = $0; if (match(n, /[0-9.]+h/)) s += 3600 * substr(n, RSTART, RLENGTH - 1);
         if (match(n, /[0-9.]+m/)) s += 60 * substr(n, RSTART, RLENGTH - 1);
         if (match(n, /[0-9.]+s/)) s += substr(n, RSTART, RLENGTH - 1); printf "%.1f", s }'; }
boot_arm=$(bootstrapped "$WORK/arch-arm64.log")
boot_amd=$(bootstrapped "$WORK/arch-amd64.log")
# mmdebstrap alone needs the handler the builder registers only for its
# builds: registered here the same way, and undone at the end.
BF=/proc/sys/fs/binfmt_misc
undo_binfmt=""
if [ ! -e $BF/qemu-aarch64 ]; then
  if [ ! -e $BF/status ]; then mount -t binfmt_misc binfmt_misc $BF && undo_binfmt="umount $BF"; fi
  cat /usr/lib/binfmt.d/qemu-aarch64.conf > $BF/register
  undo_binfmt="echo -1 > $BF/qemu-aarch64${undo_binfmt:+; $undo_binfmt}"
fi
trap 'eval "$undo_binfmt"' EXIT
echo "arch: mmdebstrap extract against minbase ..." >&2
arm_extract=$(mm arm64 extract); arm_minbase=$(mm arm64 minbase)
amd_extract=$(mm amd64 extract); amd_minbase=$(mm amd64 minbase)
share=$(awk -v x="$arm_extract" -v m="$arm_minbase" 'BEGIN { printf "%.0f", 100 * (m - x) / m }')
echo
echo "## a foreign architecture: bookworm minbase -> tar.zst through packer build (seconds; median of $ROUNDS, same run)"
printf '| %-46s | %9s | %9s | %7s |\n' "build" "amd64" "arm64" "ratio"
printf '|%s|%s|%s|%s|\n' "------------------------------------------------" "-----------" "-----------" "---------"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1fx", b / a }'; }
printf '| %-46s | %9s | %9s | %7s |\n' "cold package cache (arm64 after amd64)" "${amd_cold[0]}" "${arm_cold[0]}" "$(ratio "${amd_cold[0]}" "${arm_cold[0]}")"
printf '| %-46s | %9s | %9s | %7s |\n' "warm package cache" "$(median "${amd_warm[@]}")" "$(median "${arm_warm[@]}")" "$(ratio "$(median "${amd_warm[@]}")" "$(median "${arm_warm[@]}")")"
printf '| %-46s | %9s | %9s | %7s |\n' "of which the bootstrap step (warm)" "$boot_amd" "$boot_arm" "$(ratio "$boot_amd" "$boot_arm")"
printf '| %-46s | %9s | %9s | %7s |\n' "mmdebstrap --variant=extract (nothing emulated)" "$amd_extract" "$arm_extract" "$(ratio "$amd_extract" "$arm_extract")"
printf '| %-46s | %9s | %9s | %7s |\n' "mmdebstrap --variant=minbase (dpkg, scripts)" "$amd_minbase" "$arm_minbase" "$(ratio "$amd_minbase" "$arm_minbase")"
echo "(arm64: ${share}% of a minbase bootstrap is dpkg and the maintainer scripts running emulated: minbase minus extract)"
