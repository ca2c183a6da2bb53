#!/usr/bin/env bash
# Run the libFuzzer harnesses built by tests/fuzz.mk (make fuzz, make test-fuzz).
#
#   tools/fuzz.sh run SECONDS TARGET...   each target for SECONDS, one after the other: mutating
#                                         from its committed seeds (tests/fuzz/corpus/TARGET) and
#                                         its working corpus (build/fuzz/corpus/TARGET, kept
#                                         between runs); a crash stops that target and leaves its
#                                         input in build/fuzz/artifacts/TARGET/.
#   tools/fuzz.sh check TARGET...         each target over every committed seed once.
#
# Prints one line per target; exits 1 if any crashed (or found a leak, a timeout, an OOM).
set -uo pipefail

BUILD=${BUILD:-build}
mode=${1:-}
shift || true
if [ "$mode" = run ]; then
	seconds=${1:?seconds}
	shift
fi
[ "$mode" = run ] || [ "$mode" = check ] || { echo "usage: $0 run SECONDS TARGET... | check TARGET..." >&2; exit 2; }

# Inputs of the HTTP/2 harnesses carry whole header blocks (a CONTINUATION flood, an HPACK
# bomb): longer than the others need.
max_len() {
	case "$1" in
	h2_*) echo 65536 ;;
	*) echo 8192 ;;
	esac
}

# Bounds per input: a slow or hungry one is a finding too.
common=(-timeout=20 -rss_limit_mb=2048 -malloc_limit_mb=1024)

failed=0
for t in "$@"; do
	bin="$BUILD/fuzz/$t"
	seeds="tests/fuzz/corpus/$t"
	[ -x "$bin" ] || { echo "$t: $bin not built (make $bin)" >&2; exit 2; }
	[ -d "$seeds" ] || { echo "$t: no seed corpus $seeds" >&2; exit 2; }
	log="$BUILD/fuzz/$t.log"
	if [ "$mode" = check ]; then
		files=("$seeds"/*)
		start=$(date +%s%N)
		if "$bin" "${common[@]}" "${files[@]}" >"$log" 2>&1; then
			printf '%-16s %4d inputs ok (%d ms)\n' "$t" "${#files[@]}" \
				$((($(date +%s%N) - start) / 1000000))
		else
			echo "$t: FAILED on its committed corpus; the end of $log:"
			tail -40 "$log"
			failed=1
		fi
		continue
	fi
	work="$BUILD/fuzz/corpus/$t"
	arts="$BUILD/fuzz/artifacts/$t"
	mkdir -p "$work" "$arts"
	before=$(find "$arts" -type f | wc -l)
	"$bin" "${common[@]}" -max_total_time="$seconds" -max_len="$(max_len "$t")" \
		-print_final_stats=1 -artifact_prefix="$arts/" "$work" "$seeds" >"$log" 2>&1
	rc=$?
	stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
	execs=$(stat number_of_executed_units)
	rate=$(stat average_exec_per_sec)
	added=$(stat new_units_added)
	crashes=$(($(find "$arts" -type f | wc -l) - before))
	printf '%-16s %10s execs %7s exec/s  %d crashes  corpus %d (+%s)%s\n' "$t" "${execs:-?}" \
		"${rate:-?}" "$crashes" "$(find "$work" -type f | wc -l)" "${added:-?}" \
		"$([ $rc -ne 0 ] && echo "  exit $rc: see $log, input in $arts/")"
	[ $rc -eq 0 ] && [ "$crashes" -eq 0 ] || failed=1
done
exit $failed
