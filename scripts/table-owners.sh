#!/usr/bin/env bash
# table-owners.sh prints, for each table the migrations create, the Go
# packages whose non-test source names it in SQL (after FROM, JOIN, INTO,
# UPDATE or TABLE, across line breaks). One package per line means one
# owner. migrations/owners_test.go enforces the same map, with its
# exceptions (read-only joins marked in a comment, pending packages).
set -euo pipefail
cd "$(dirname "$0")/.."
tables=$(grep -hoiE 'create table (if not exists )?[a-z_][a-z0-9_]*' migrations/sql/*.sql | awk '{print tolower($NF)}' | sort -u)
uses=$(find . -name '*.go' ! -name '*_test.go' ! -path './.*' ! -path './migrations/*' ! -path '*/testdata/*' -print0 |
	xargs -0 perl -0777 -ne '
		my $dir = $ARGV; $dir =~ s{^\./}{}; $dir =~ s{/[^/]*$}{};
		while (/\b(?:FROM|JOIN|INTO|UPDATE|TABLE)\s+([a-z_][a-z0-9_]*)\b/g) { print "$1 $dir\n" }')
for t in $tables; do
	printf '%s: %s\n' "$t" "$(awk -v t="$t" '$1 == t {print $2}' <<<"$uses" | sort -u | tr '\n' ' ')"
done
