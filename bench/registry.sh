#!/usr/bin/env bash
# Registry transport: a base image (bookworm minbase) and a child on it (jq
# and a config file, bench/layers.pkr.hcl) built once into a store, then
# bench/registrybench against Debian's docker-registry on loopback: the
# child's push when its base is already in the registry against the push of
# the whole image, and a pull of the base into a fresh store against
# `skopeo copy` of it to an OCI layout; $REGISTRY_ROUNDS (5) rounds, medians.
# Goals: child push <= 0.2x and only the child layer's bytes; pull <= 1.2x.
# Run by bench/run.sh with $WORK, $MIRROR and the plugin installed; alone:
#   WORK=$(mktemp -d) MIRROR=$(go run ./bench/hostmirror) bash bench/registry.sh
set -euo pipefail
ROOT=${ROOT:-$PWD}
WORK=${WORK:?set WORK}
MIRROR=${MIRROR:?set MIRROR}
STORE=$WORK/registry-store
CACHE=$WORK/registry-cache
export CHECKPOINT_DISABLE=1 PACKER_PLUGIN_PATH=${PACKER_PLUGIN_PATH:-$WORK/plugins}
"$ROOT/bin/packer" plugins install --path "$ROOT/bin/packer-plugin-strata" github.com/strata-build/strata >/dev/null
build() { # dir, extra -var args...
  local dir=$1; shift
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && "$ROOT/bin/packer" build -force -color=false -var store_dir="$STORE" -var cache_dir="$CACHE" \
     -var mirror="$MIRROR" -var 'formats=["dir"]' "$@" "$ROOT/bench/layers.pkr.hcl") >"$dir.log" 2>&1 || { tail -30 "$dir.log"; exit 1; }
}
image_id() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["image_id"])' "$1/output-bench/artifact.json"; }
echo "registry: building the base and the child ..." >&2
build "$WORK/rbase" -var base_only=true
BASE=$(image_id "$WORK/rbase")
build "$WORK/rchild" -var parent="$BASE"
CHILD=$(image_id "$WORK/rchild")
echo
(cd "$ROOT" && go run ./bench/registrybench -store "$STORE/layers" -base "$BASE" -child "$CHILD" -rounds "${REGISTRY_ROUNDS:-5}")
