#!/bin/bash
# run-tests.sh BUILD - every suite of `make test`, against the sanitizer
# build in BUILD: cmocka unit tests, the end-to-end tests (pytest, real
# clients, real sockets on loopback), and each fuzz target briefly on its
# corpus.  Prints one closing line "summary: N passed, M failed" and exits
# non-zero when anything failed or nothing ran.
set -u
build=${1:-build-asan}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
pass=0
fail=0
failed=()

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run() {	# run NAME CMD...: one suite
	local name=$1
	shift
	echo "=== $name"
	if "$@"; then
		pass=$((pass + 1))
	else
		echo "=== FAILED: $name"
		fail=$((fail + 1))
		failed+=("$name")
	fi
}

units=("$build"/tests/test_*)
[ -e "${units[0]}" ] || { echo "no unit tests built in $build/tests"; exit 1; }
for t in "${units[@]}"; do
	run "unit $(basename "$t")" "$t"
done

pytest_e2e() {
	ETRND_BUILD="$top/$build" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
		--durations=10 tests/e2e
	local rc=$?
	[ $rc -eq 5 ] && { echo "pytest collected no test"; return 1; }
	return $rc
}
run "e2e pytest" pytest_e2e

fuzz_smoke() {	# fuzz_smoke BIN CORPUS: a few seconds, corpus kept read-only
	local work
	work=$(mktemp -d)
	"$1" -max_total_time="${FUZZ_SMOKE_SECONDS:-5}" -print_final_stats=1 \
		"$work" "$2" >"$work.log" 2>&1
	local rc=$?
	grep -E 'stat::number_of_executed_units|ERROR|SUMMARY' "$work.log" | head -5
	[ $rc -ne 0 ] && tail -40 "$work.log"
	rm -rf "$work" "$work.log"
	return $rc
}
fuzzers=(build-fuzz/fuzz_*)
[ -e "${fuzzers[0]}" ] || { echo "no fuzz targets built"; exit 1; }
for f in "${fuzzers[@]}"; do
	name=${f#build-fuzz/fuzz_}
	run "fuzz $name" fuzz_smoke "$f" "tests/fuzz/corpus/$name"
done

echo
[ ${#failed[@]} -gt 0 ] && printf 'failed: %s\n' "${failed[@]}"
echo "summary: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
