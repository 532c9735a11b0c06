#!/usr/bin/env bash
# The package cache: a minbase bootstrap plus `apt-get install python3`,
# cold (empty cache) and warm, twice each, against the host's mirror as it is
# and through a relay on loopback throttled to 2 MB/s (a distant mirror);
# then two warm builds at once against one warm build. Run by bench/run.sh
# with $WORK, $MIRROR and the plugin installed.
set -euo pipefail
ROOT=${ROOT:-$PWD}
now() { date +%s.%N; }
line() { grep -h "package cache: " "$1" | tail -n1 | sed 's/.*package cache: //'; }
build() { # name, cache, mirror
  local dir=$WORK/c-$1
  rm -rf "$dir" && mkdir -p "$dir"
  (cd "$dir" && "$ROOT/bin/packer" build -force -color=false -var store_dir="$WORK/c-store-$1" -var cache_dir="$2" \
     -var mirror="$3" "$ROOT/bench/cache.pkr.hcl") >"$dir.log" 2>&1 || { tail -30 "$dir.log"; exit 1; }
}
timed() { # name, cache, mirror -> seconds
  local t0 t1; t0=$(now); build "$@"; t1=$(now)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}

go build -o "$WORK/relay" ./bench/relay
"$WORK/relay" -upstream "$MIRROR" -rate 2000000 >"$WORK/relay.url" 2>"$WORK/relay.log" &
RELAY_PID=$!
trap 'kill $RELAY_PID 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$WORK/relay.url" ] && break; sleep 0.1; done
RELAY=$(cat "$WORK/relay.url")

declare -A secs lines
for where in mirror relay; do
  url=$MIRROR; [ $where = relay ] && url=$RELAY
  for round in 1 2; do
    echo "cache: $where, round $round ..." >&2
    cache=$WORK/cache-$where-$round
    rm -rf "$cache"
    secs[$where-cold-$round]=$(timed "$where-cold-$round" "$cache" "$url"); lines[$where-cold-$round]=$(line "$WORK/c-$where-cold-$round.log")
    secs[$where-warm-$round]=$(timed "$where-warm-$round" "$cache" "$url"); lines[$where-warm-$round]=$(line "$WORK/c-$where-warm-$round.log")
  done
done
echo "cache: two warm builds at once ..." >&2
t0=$(now)
build pair-a "$WORK/cache-mirror-2" "$MIRROR" & a=$!
build pair-b "$WORK/cache-mirror-2" "$MIRROR" & b=$!
wait $a; wait $b
t1=$(now)
pair=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
one=$(timed single "$WORK/cache-mirror-2" "$MIRROR")

echo
echo "## package cache: minbase + apt-get install python3 (same run, two rounds each)"
printf '| %-40s | %8s | %8s | %-62s |\n' "build" "round 1" "round 2" "cache line (round 2)"
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..42})" "----------" "----------" "$(printf -- '-%.0s' {1..64})"
for where in mirror relay; do
  for t in cold warm; do
    name="$t cache, $where"; [ $where = relay ] && name="$t cache, relay at 2 MB/s"
    printf '| %-40s | %8s | %8s | %-62s |\n' "$name" "${secs[$where-$t-1]}" "${secs[$where-$t-2]}" "${lines[$where-$t-2]}"
  done
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
echo "warm/cold, host mirror: $(ratio "${secs[mirror-warm-1]}" "${secs[mirror-cold-1]}")x and $(ratio "${secs[mirror-warm-2]}" "${secs[mirror-cold-2]}")x (goal: at most 1)"
echo "warm/cold, relay at 2 MB/s: $(ratio "${secs[relay-warm-1]}" "${secs[relay-cold-1]}")x and $(ratio "${secs[relay-warm-2]}" "${secs[relay-cold-2]}")x (goal: at most 0.5)"
echo "two warm builds at once: $pair s, one warm build: $one s: $(ratio "$pair" "$one")x (goal: at most 1.3)"
