#!/usr/bin/env bash
# compare.sh times `leakwatch scan` against gitleaks (release regex engine)
# on the same tree, in one run, and prints MB/s for both and the ratio.
#
# Usage: matcher/bench/compare.sh [TREE_SOURCE]   (default: $(go env GOROOT)/src)
#
# The tree is a copy of TREE_SOURCE with a few registered secrets planted:
# three provider-shaped keys and two passwords. leakwatch scans it twice,
# with two registries: the three keys alone, and the realistic registry of
# the matcher's benchmarks (100,000 fingerprints: provider tokens of every
# kind, 10% unprefixed keys, 5% passwords; REGISTRY_N and REGISTRY_PASSWORDS
# change it) holding all five. Passwords make the matcher probe every anchor
# byte (and, while one of them has no anchor, every offset), so the second
# figure is the honest one for a real customer; gitleaks, a
# regex scanner, finds a password only where a rule for its context fires
# (the script counts which of the planted ones it reported).
# gitleaks v8.30.1 is installed with `go install -tags gore2regex` if it is
# not on PATH or in $(go env GOPATH)/bin. Both tools use every core.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
src=${1:-$(go env GOROOT)/src}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Built as the release image builds it (deployments/Dockerfile): static,
# without symbol tables, for x86-64-v3 where the CPU has it.
echo "building leakwatch..." >&2
amd64=v1
if grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw bmi2 /proc/cpuinfo && grep -qw movbe /proc/cpuinfo; then
  amd64=v3
fi
(cd "$repo" && CGO_ENABLED=0 GOAMD64=$amd64 go build -trimpath -ldflags "-s -w" -o "$work/leakwatch" ./cmd/leakwatch)

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
# The realistic registry comes from the matcher's test binary, which holds
# the benchmarks' generator.
echo "generating the realistic registry..." >&2
(cd "$repo" && go test -c -o "$work/matcher.test" ./matcher/)
"$work/matcher.test" -realistic-registry "$work/registry" \
  -realistic-n "${REGISTRY_N:-100000}" -realistic-passwords "${REGISTRY_PASSWORDS:-0.05}"
# Two of its passwords (with symbols) are planted.
mapfile -t passwords < <(grep '[^A-Za-z0-9+/=._~-]' "$work/registry" | head -2)

# Plant fake, high-entropy secrets in assorted files and encodings.
secrets=(
  "ghp_R4nd0mT0kenV4lue9xQ2ZpL8mN3bV7cX1zK5"
  "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8vB3nH2q"
  "xoxb-2048739102-8837465012-Qm7VzR2pLk9XwT4nB6yH1cJd"
  "${passwords[@]}"
)
i=0
while IFS= read -r f; do
  s=${secrets[$((i % 5))]}
  case $((i % 5)) in
    0) printf '\nconst token = "%s"\n' "$s" >>"$f" ;;
    1) printf '\n// AWS_SECRET_ACCESS_KEY=%s\n' "$s" >>"$f" ;;
    2) printf '\n// %s\n' "$(printf 'SLACK=%s' "$s" | base64 -w0)" >>"$f" ;;
    3) printf '\n// password: %s\n' "$s" >>"$f" ;;
    4) printf '\n// %s\n' "$(printf 'db_password=%s' "$s" | base64 -w0)" >>"$f" ;;
  esac
  i=$((i + 1))
done < <(find "$tree" -name '*.go' -size +4k | sort | awk 'NR % 300 == 1')
planted=$i
printf '%s\n' "${secrets[@]:0:3}" | "$work/leakwatch" fingerprint >"$work/fingerprints"
# Short passwords are registered as customers register them: --allow-weak.
{ printf '%s\n' "${secrets[@]:0:3}"; cat "$work/registry"; } |
  "$work/leakwatch" fingerprint --allow-weak >"$work/fingerprints.realistic"

bytes=$(find "$tree" -type f -print0 | du -cb --files0-from=- | tail -1 | cut -f1)
files=$(find "$tree" -type f | wc -l)
mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
echo "tree: $files files, $mb MB, $planted planted secrets (2 in 5 passwords); $(nproc) cores" >&2
echo "registries: 3 keys; realistic, $(wc -l <"$work/fingerprints.realistic") fingerprints" >&2

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
lw="" lr="" gl=""
for i in $(seq "$runs"); do
  timed "$work/lw.jsonl" "$work/leakwatch" scan --fingerprints "$work/fingerprints" "$tree"
  lwcode=$code
  [[ -n ${VERBOSE:-} ]] && echo "  run $i: leakwatch, 3 keys ${wall}s wall, ${cpu} CPU-s" >&2
  if [[ -z $lw ]] || awk -v a="$wall" -v b="$lw" 'BEGIN { exit !(a < b) }'; then
    lw=$wall lwcpu=$cpu
  fi
  timed "$work/lr.jsonl" "$work/leakwatch" scan --fingerprints "$work/fingerprints.realistic" "$tree"
  lrcode=$code
  [[ -n ${VERBOSE:-} ]] && echo "  run $i: leakwatch, realistic ${wall}s wall, ${cpu} CPU-s" >&2
  if [[ -z $lr ]] || awk -v a="$wall" -v b="$lr" 'BEGIN { exit !(a < b) }'; then
    lr=$wall lrcpu=$cpu
  fi
  [[ -z $gitleaks ]] && continue
  timed /dev/null "$gitleaks" dir --no-banner --log-level error --report-format json --report-path "$work/gl.json" "$tree"
  glcode=$code
  [[ -n ${VERBOSE:-} ]] && echo "  run $i: gitleaks  ${wall}s wall, ${cpu} CPU-s" >&2
  if [[ -z $gl ]] || awk -v a="$wall" -v b="$gl" 'BEGIN { exit !(a < b) }'; then
    gl=$wall glcpu=$cpu
  fi
done

mbs() { awk -v m="$mb" -v t="$1" 'BEGIN { printf "%.0f", m / t }'; }
echo "leakwatch scan, 3 keys:    ${lw}s wall, ${lwcpu} CPU-s, $(mbs "$lw") MB/s, $(wc -l <"$work/lw.jsonl") findings (exit $lwcode), best of $runs"
echo "leakwatch scan, realistic: ${lr}s wall, ${lrcpu} CPU-s, $(mbs "$lr") MB/s, $(wc -l <"$work/lr.jsonl") findings of $planted planted (exit $lrcode), best of $runs"
if [[ -n $gitleaks ]]; then
  echo "gitleaks dir:              ${gl}s wall, ${glcpu} CPU-s, $(mbs "$gl") MB/s, $(grep -c '"RuleID"' "$work/gl.json" || true) findings (exit $glcode), v8.30.1 gore2regex, best of $runs"
  ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "?" }'; }
  echo "ratio, 3 keys:    leakwatch is $(ratio "$gl" "$lw")x faster in wall time ($(ratio "$glcpu" "$lwcpu")x in CPU time)"
  echo "ratio, realistic: leakwatch is $(ratio "$gl" "$lr")x faster in wall time ($(ratio "$glcpu" "$lrcpu")x in CPU time)"
  found=0
  for p in "${passwords[@]}"; do grep -qF -- "$p" "$work/gl.json" && found=$((found + 1)); done
  echo "passwords: gitleaks reported $found of the ${#passwords[@]} planted passwords"
fi
