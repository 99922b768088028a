#!/usr/bin/env bash
# compare.sh times `leakwatch scan` against gitleaks (release regex engine)
# on the same tree, in one run, and prints MB/s for both and the ratio.
#
# Usage: matcher/bench/compare.sh [TREE_SOURCE]   (default: $(go env GOROOT)/src)
#
# The tree is a copy of TREE_SOURCE with a few registered secrets planted.
# gitleaks v8.30.1 is installed with `go install -tags gore2regex` if it is
# not on PATH or in $(go env GOPATH)/bin. Both tools use every core.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
src=${1:-$(go env GOROOT)/src}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Built as the release image builds it (deployments/Dockerfile): static,
# without symbol tables.
echo "building leakwatch..." >&2
(cd "$repo" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/leakwatch" ./cmd/leakwatch)

gitleaks=$(command -v gitleaks || true)
if [[ -z $gitleaks && -x $(go env GOPATH)/bin/gitleaks ]]; then
  gitleaks=$(go env GOPATH)/bin/gitleaks
fi
if [[ -z $gitleaks ]]; then
  echo "installing gitleaks v8.30.1 (release regex engine)..." >&2
  if go install -tags gore2regex github.com/zricethezav/gitleaks/v8@v8.30.1; then
    gitleaks=$(go env GOPATH)/bin/gitleaks
  else
    echo "WARNING: could not install gitleaks; printing leakwatch's figure only" >&2
  fi
fi

echo "copying $src..." >&2
tree=$work/tree
mkdir -p "$tree"
cp -R "$src/." "$tree/"
# Plant fake, high-entropy secrets in assorted files and encodings.
secrets=(
  "ghp_R4nd0mT0kenV4lue9xQ2ZpL8mN3bV7cX1zK5"
  "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8vB3nH2q"
  "xoxb-2048739102-8837465012-Qm7VzR2pLk9XwT4nB6yH1cJd"
)
i=0
while IFS= read -r f; do
  s=${secrets[$((i % 3))]}
  case $((i % 3)) in
    0) printf '\nconst token = "%s"\n' "$s" >>"$f" ;;
    1) printf '\n// AWS_SECRET_ACCESS_KEY=%s\n' "$s" >>"$f" ;;
    2) printf '\n// %s\n' "$(printf 'SLACK=%s' "$s" | base64 -w0)" >>"$f" ;;
  esac
  i=$((i + 1))
done < <(find "$tree" -name '*.go' -size +4k | sort | awk 'NR % 500 == 1')
printf '%s\n' "${secrets[@]}" | "$work/leakwatch" fingerprint >"$work/fingerprints"

bytes=$(find "$tree" -type f -print0 | du -cb --files0-from=- | tail -1 | cut -f1)
files=$(find "$tree" -type f | wc -l)
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
echo "tree: $files files, $mb MB, $i planted secrets; $(nproc) cores" >&2

# timed OUT CMD...: runs CMD with stdout to OUT and stderr discarded; sets
# wall and cpu (user+sys seconds) and code. Bash's time keyword measures
# the command itself, with no helper process in the measured span (a short
# scan would otherwise carry their start-up cost).
timed() {
  local out=$1 f=$work/time.$RANDOM
  shift
  local TIMEFORMAT='%3R %3U %3S'
  set +e
  { time "$@" >"$out" 2>/dev/null; } 2>"$f"
  code=$?
  set -e
  wall=$(awk 'END { print $1 }' "$f")
  cpu=$(awk 'END { printf "%.2f", $2 + $3 }' "$f")
}

# Let the copy's writeback finish, then warm the page cache so both tools
# read from memory.
sync
find "$tree" -type f -exec cat {} + >/dev/null 2>&1 || true
sleep 2
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# The tools take turns, $runs runs each, and each keeps its fastest wall
# time (and that run's CPU time): a shared machine's load only ever slows
# a run down, and taking turns exposes both to the same spells of it.
runs=${RUNS:-5}
lw="" gl=""
for i in $(seq "$runs"); do
  timed "$work/lw.jsonl" "$work/leakwatch" scan --fingerprints "$work/fingerprints" "$tree"
  lwcode=$code
  [[ -n ${VERBOSE:-} ]] && echo "  run $i: leakwatch ${wall}s wall, ${cpu} CPU-s" >&2
  if [[ -z $lw ]] || awk -v a="$wall" -v b="$lw" 'BEGIN { exit !(a < b) }'; then
    lw=$wall lwcpu=$cpu
  fi
  [[ -z $gitleaks ]] && continue
  timed /dev/null "$gitleaks" dir --no-banner --log-level error --report-format json --report-path "$work/gl.json" "$tree"
  glcode=$code
  [[ -n ${VERBOSE:-} ]] && echo "  run $i: gitleaks  ${wall}s wall, ${cpu} CPU-s" >&2
  if [[ -z $gl ]] || awk -v a="$wall" -v b="$gl" 'BEGIN { exit !(a < b) }'; then
    gl=$wall glcpu=$cpu
  fi
done

echo "leakwatch scan: ${lw}s wall, ${lwcpu} CPU-s, $(awk -v m="$mb" -v t="$lw" 'BEGIN { printf "%.0f", m / t }') MB/s, $(wc -l <"$work/lw.jsonl") findings (exit $lwcode), best of $runs"
if [[ -n $gitleaks ]]; then
  echo "gitleaks dir:   ${gl}s wall, ${glcpu} CPU-s, $(awk -v m="$mb" -v t="$gl" 'BEGIN { printf "%.0f", m / t }') MB/s, $(grep -c '"RuleID"' "$work/gl.json" || true) findings (exit $glcode), v8.30.1 gore2regex, best of $runs"
  echo "ratio: leakwatch is $(awk -v a="$gl" -v b="$lw" 'BEGIN { printf "%.1f", a / b }')x faster in wall time ($(awk -v a="$glcpu" -v b="$lwcpu" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "?" }')x in CPU time)"
fi
