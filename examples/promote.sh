#!/usr/bin/env bash
# A promotion job: moves channel TO of IMAGE to what channel FROM holds
# (dev -> staging -> production), recording who and why.
#   examples/promote.sh IMAGE FROM TO [REASON]
# Exit codes are strata's, for the CI to act on: 0 promoted (or already
# there), 3 nothing to promote (no such image, or FROM holds nothing),
# 4 refused (the version is revoked or its content is gone, or TO's
# channel policy refuses it: evidence missing, too young), 2 bad usage,
# 1 anything else. The actor is $STRATA_ACTOR, else the CI's job, else
# user@host.
set -uo pipefail
if [ $# -lt 3 ] || [ $# -gt 4 ]; then
  echo "usage: $0 IMAGE FROM TO [REASON]" >&2
  exit 2
fi
image=$1 from=$2 to=$3
reason=${4:-"promoted from $from"}
STRATA=${STRATA:-strata}
actor=${STRATA_ACTOR:-}
if [ -z "$actor" ] && [ -n "${CI_JOB_ID:-}" ]; then
  actor="ci-job-$CI_JOB_ID"
fi
args=(promote "$image" "$to" --from "$from" --reason "$reason")
if [ -n "$actor" ]; then
  args+=(--actor "$actor")
fi
"$STRATA" "${args[@]}"
rc=$?
case $rc in
  0) ;;
  3) echo "promote.sh: nothing to promote: $image has no channel $from (or no such image, or no catalog)" >&2 ;;
  4) echo "promote.sh: refused: what $from holds may not go to $to (revoked, its content is gone, or the policy of $to refuses it); see strata history $image $from and strata policy show $image $to" >&2 ;;
  *) echo "promote.sh: strata promote failed ($rc)" >&2 ;;
esac
exit $rc
