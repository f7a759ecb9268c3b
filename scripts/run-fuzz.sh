#!/bin/bash
# run-fuzz.sh SECONDS - every fuzz target for SECONDS each, on a copy of
# its committed corpus.  New interesting inputs are kept in
# build-fuzz/new-corpus/NAME (merge them into tests/fuzz/corpus/NAME with
# -merge=1 when they are worth keeping); a crash leaves its input in
# build-fuzz/findings/ and fails the run.  Prints executions per target.
set -u
secs=${1:-60}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
mkdir -p build-fuzz/findings build-fuzz/new-corpus
fail=0
printf '%-20s %12s %8s %s\n' target executions seconds result
for f in build-fuzz/fuzz_*; do
	name=${f#build-fuzz/fuzz_}
	work=build-fuzz/new-corpus/$name
	mkdir -p "$work"
	log=build-fuzz/findings/$name.log
	"$f" -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="build-fuzz/findings/$name-" \
		"$work" "tests/fuzz/corpus/$name" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	if [ $rc -eq 0 ]; then
		result=ok
	else
		result="FINDING (see $log)"
		fail=1
	fi
	printf '%-20s %12s %8s %s\n' "$name" "${execs:-?}" "$secs" "$result"
done
exit $fail
