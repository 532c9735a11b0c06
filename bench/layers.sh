#!/usr/bin/env bash
# Layered build against the same steps on the parent's rootfs tarball
# (source_archive) and the full rebuild of the same result (jq and a config
# file, output oci), and the child with strata-packages (shared package
# indexes) instead of a shell apt-get; $LAYER_ROUNDS (5) rounds, medians; and
# the child layer's size against
# the bytes the change really added (dpkg -L of the new packages, plus the
# config file). Run by bench/run.sh with $WORK, $MIRROR and the plugin
# installed.
set -euo pipefail
ROOT=${ROOT:-$PWD}
ROUNDS=${LAYER_ROUNDS:-5}
STORE=$WORK/layers-store
CACHE=$WORK/layers-cache
now() { date +%s.%N; }
build() { # dir, extra -var args...
  local dir=$1; shift
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && "$ROOT/bin/packer" build -force -color=false -var store_dir="$STORE" -var cache_dir="$CACHE" \
     -var mirror="$MIRROR" "$@" "$ROOT/bench/layers.pkr.hcl") >"$dir.log" 2>&1 || { tail -30 "$dir.log"; exit 1; }
}
build_pkgs() { # dir, extra -var args...
  local dir=$1; shift
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && "$ROOT/bin/packer" build -force -color=false -var store_dir="$STORE" -var cache_dir="$CACHE" \
     -var parent="$BASE" "$@" "$ROOT/bench/packages.pkr.hcl") >"$dir.log" 2>&1 || { tail -30 "$dir.log"; exit 1; }
}
# strata-packages' own time in a build's log.
pkgs_secs() { grep -o 'strata-packages done in [0-9.]*[mµ]*s' "$1" | awk '{ v = $4; if (v ~ /ms$/) { sub(/ms$/, "", v); v /= 1000 } else if (v ~ /µs$/) { v = 0 } else { sub(/s$/, "", v) }; printf "%.3f", v }'; }
# The floor: dpkg -i of the .debs the lock names, in a chroot of the base.
# With $1 = unsafe, dpkg skips its fsync of each unpacked file
# (--force-unsafe-io), as dpkg in a child's chroot does: there fsync is a
# no-op (the overlay is volatile; the commit syncs the layer once).
floor() {
  local d=$WORK/floor opt=
  [ "${1:-}" = unsafe ] && opt=--force-unsafe-io
  rm -rf "$d" && mkdir -p "$d" && tar -C "$d" -xpf "$ARCHIVE" --numeric-owner
  python3 -c 'import json,sys; [print(p["sha256"]) for p in json.load(open(sys.argv[1]))["packages"]]' "$LOCK" |
    while read -r h; do cp "$CACHE/blobs/sha256/$h" "$d/tmp/$h.deb"; done
  sync
  local t0 t1
  t0=$(now); chroot "$d" sh -c "dpkg $opt -i /tmp/*.deb" >"$WORK/floor.log" 2>&1; t1=$(now)
  rm -rf "$d"
  secs "$t0" "$t1"
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
image_id() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["image_id"])' "$1/output-bench/artifact.json"; }

echo "layers: building the base image ..." >&2
build "$WORK/lbase" -var base_only=true -var 'formats=["oci", "tar"]'
BASE=$(image_id "$WORK/lbase")
ARCHIVE=$WORK/lbase/output-bench/rootfs.tar
LOCK=$WORK/jq.lock
rm -f "$LOCK"
if [ "${LAYER_PKGS:-1}" = 1 ]; then build_pkgs "$WORK/lpkgs" -var lock_file="$LOCK"; fi # writes the lock (and warms the indexes)
declare -a child archive pkgs full lock pkgst lockt flo flu
for i in $(seq "$ROUNDS"); do
  echo "layers: round $i/$ROUNDS ..." >&2
  t0=$(now); build "$WORK/lchild" -var parent="$BASE"; t1=$(now); child+=("$(secs "$t0" "$t1")")
  t0=$(now); build "$WORK/larchive" -var archive="$ARCHIVE"; t1=$(now); archive+=("$(secs "$t0" "$t1")")
  if [ "${LAYER_PKGS:-1}" = 1 ]; then
    t0=$(now); build_pkgs "$WORK/lpkgs"; t1=$(now); pkgs+=("$(secs "$t0" "$t1")"); pkgst+=("$(pkgs_secs "$WORK/lpkgs.log")")
    t0=$(now); build_pkgs "$WORK/llock" -var lock_file="$LOCK"; t1=$(now); lock+=("$(secs "$t0" "$t1")"); lockt+=("$(pkgs_secs "$WORK/llock.log")")
    flo+=("$(floor)")
    flu+=("$(floor unsafe)")
  fi
  if [ "${LAYER_FULL:-1}" = 1 ]; then t0=$(now); build "$WORK/lfull"; t1=$(now); full+=("$(secs "$t0" "$t1")"); fi
done
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
mc=$(median "${child[@]}"); ma=$(median "${archive[@]}"); mp=$(median "${pkgs[@]:-0}")
mf=$(median "${full[@]:-0}")
ml=$(median "${lock[@]:-0}"); mpt=$(median "${pkgst[@]:-0}"); mlt=$(median "${lockt[@]:-0}"); mfl=$(median "${flo[@]:-0}"); mfu=$(median "${flu[@]:-0}")

if [ "${LAYER_FULL:-1}" = 1 ]; then
# What the change really added: the files of the packages apt installed on
# top of the base (dpkg -L, regular files), and the config file.
layer_size=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][-1]["size"])' "$WORK/lchild/output-bench/artifact.json")
# The child layer's regular files, from its OCI blob.
oci=$WORK/lchild/output-bench/oci
manifest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"][7:])' "$oci/index.json")
blob=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layers"][-1]["digest"][7:])' "$oci/blobs/sha256/$manifest")
layer_files=$(tar -tvzf "$oci/blobs/sha256/$blob" | awk '$1 ~ /^-/ { s += $3 } END { print s }')
tree=$WORK/lview && rm -rf "$tree" && mkdir -p "$tree"
tar -xzf "$(ls -S "$WORK/lfull/output-bench/oci/blobs/sha256/"* | head -n1)" -C "$tree" 2>/dev/null || true

added=$(chroot "$tree" sh -c 'for p in jq libjq1 libonig5; do dpkg -L $p; done | sort -u | while read f; do [ -f "$f" ] && [ ! -L "$f" ] && stat -c %s "$f"; done | awk "{ s += \$1 } END { print s }"')
conf=$(stat -c %s "$tree/etc/bench.json")
added=$((added + conf))

echo
fi
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "-" }'; }
echo "## layered child build vs the same steps on the parent's tarball and the full rebuild (jq + a config file, output oci; median of $ROUNDS, same run)"
printf '| %-52s | %9s | %12s | %12s |\n' "build" "seconds" "vs tarball" "vs full"
printf '|%s|%s|%s|%s|\n' "------------------------------------------------------" "-----------" "--------------" "--------------"
printf '| %-52s | %9s | %11sx | %11sx |\n' "full rebuild (bootstrap + steps)" "$mf" "$(ratio "$mf" "$ma")" "1.000"
printf '| %-52s | %9s | %11sx | %11sx |\n' "same steps on the parent's tarball (source_archive)" "$ma" "1.000" "$(ratio "$ma" "$mf")"
printf '| %-52s | %9s | %11sx | %11sx |\n' "child on the base image (shell apt-get)" "$mc" "$(ratio "$mc" "$ma")" "$(ratio "$mc" "$mf")"
printf '| %-52s | %9s | %11sx | %11sx |\n' "child on the base image (strata-packages)" "$mp" "$(ratio "$mp" "$ma")" "$(ratio "$mp" "$mf")"
printf '| %-52s | %9s | %11sx | %11sx |\n' "child on the base image (strata-packages, lock file)" "$ml" "$(ratio "$ml" "$ma")" "$(ratio "$ml" "$mf")"
echo
echo "## installing jq in a child: strata-packages' own time against the floor (median of $ROUNDS, same run)"
printf '| %-58s | %9s | %12s | %13s |\n' "install" "seconds" "vs floor" "vs unsafe-io"
printf '|%s|%s|%s|%s|\n' "------------------------------------------------------------" "-----------" "--------------" "---------------"
printf '| %-58s | %9s | %11sx | %12sx |\n' "floor: dpkg -i of the 3 .debs in a chroot of the base" "$mfl" "1.000" "$(ratio "$mfl" "$mfu")"
printf '| %-58s | %9s | %11sx | %12sx |\n' "floor without fsync: dpkg --force-unsafe-io -i, same" "$mfu" "$(ratio "$mfu" "$mfl")" "1.000"
printf '| %-58s | %9s | %11sx | %12sx |\n' "strata-packages, warm shared indexes (goal <= 5x)" "$mpt" "$(ratio "$mpt" "$mfl")" "$(ratio "$mpt" "$mfu")"
printf '| %-58s | %9s | %11sx | %12sx |\n' "strata-packages, lock file (goal <= 2x)" "$mlt" "$(ratio "$mlt" "$mfl")" "$(ratio "$mlt" "$mfu")"
echo
echo "rounds: child ${child[*]}; tarball ${archive[*]}; strata-packages ${pkgs[*]:-not run}; lock ${lock[*]:-not run}; full ${full[*]:-not run}"
echo "rounds (install alone): floor ${flo[*]:-not run}; floor unsafe-io ${flu[*]:-not run}; strata-packages ${pkgst[*]:-not run}; lock ${lockt[*]:-not run}"
for f in "$WORK"/lchild.log "$WORK"/larchive.log; do
  echo "$(basename "$f" .log) (last round): $(grep -ho 'bench: apt-get [a-z]* [0-9]* ms' "$f" | sed 's/bench: //' | paste -sd, -)"
done
grep -h "strata: step times" "$WORK/lchild.log" | sed 's/^.*strata: /last shell child: /' || true
grep -h "strata: step times" "$WORK/lpkgs.log" | sed 's/^.*strata: /last strata-packages child: /' || true
grep -h "package indexes\|apt-get update took\|Not updating" "$WORK/lpkgs.log" | sed 's/^ */  /' || true
grep -h "strata: step times" "$WORK/llock.log" | sed 's/^.*strata: /last lock-file child: /' || true
if [ "${LAYER_FULL:-1}" = 1 ]; then
echo "the change added $added bytes (dpkg -L jq libjq1 libonig5: $((added - conf)), the config file: $conf)"
echo "child layer: $layer_files bytes in regular files, $(awk -v a="$layer_files" -v b="$added" 'BEGIN { printf "%.1f%%", (a - b) * 100 / b }') over; $layer_size bytes as an uncompressed tar, $(awk -v a="$layer_size" -v b="$added" 'BEGIN { printf "%.1f%%", (a - b) * 100 / b }') over"
echo "what the layer holds besides the packages' files:"
tar -tvzf "$oci/blobs/sha256/$blob" | awk '$1 ~ /^-/ && $6 !~ /^.\/usr\// { printf "  %8d %s\n", $3, $6 }' | sort -rn | head -8
grep -E "^\s+strata-chroot.bench: (Layer|Image|Committed|build-time|[0-9]+ entries)" "$WORK/lchild.log" | sed 's/^ */  /' || true
fi
