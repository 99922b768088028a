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

echo "building leakwatch..." >&2
(cd "$repo" && go build -o "$work/leakwatch" ./cmd/leakwatch)

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

now() { date +%s.%N; }
# Warm the page cache so both tools read from memory.
cat $(find "$tree" -type f) >/dev/null 2>&1 || true

t0=$(now)
set +e
"$work/leakwatch" scan --fingerprints "$work/fingerprints" "$tree" >"$work/lw.jsonl"
lwcode=$?
set -e
t1=$(now)
lw=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
lwfound=$(wc -l <"$work/lw.jsonl")
echo "leakwatch scan: ${lw}s, $(awk -v m="$mb" -v t="$lw" 'BEGIN { printf "%.0f", m / t }') MB/s, $lwfound findings (exit $lwcode)"

if [[ -n $gitleaks ]]; then
  t0=$(now)
  set +e
  "$gitleaks" dir --no-banner --log-level error --report-format json --report-path "$work/gl.json" "$tree" >/dev/null 2>&1
  glcode=$?
  set -e
  t1=$(now)
  gl=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  glfound=$(grep -c '"RuleID"' "$work/gl.json" || true)
  echo "gitleaks dir:   ${gl}s, $(awk -v m="$mb" -v t="$gl" 'BEGIN { printf "%.0f", m / t }') MB/s, $glfound findings (exit $glcode) [$("$gitleaks" version 2>/dev/null)]"
  echo "ratio: leakwatch is $(awk -v a="$gl" -v b="$lw" 'BEGIN { printf "%.1f", a / b }')x faster in wall time"
fi
