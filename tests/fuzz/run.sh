#!/bin/sh
# run.sh SECONDS TARGET... - runs each libFuzzer target of $FUZZ_BIN_DIR
# (default build/fuzz/) for SECONDS and prints one TAP line per target:
#   ok - fuzz json (30 s, 812345 runs, cov 412, corpus 96)
#   not ok - fuzz config: crash, input build/fuzz/artifacts/config/crash-...
# The seeds and regression inputs of testdata/fuzz/<target>/ run first
# (libFuzzer reads every corpus folder before it mutates); new inputs are
# kept in build/fuzz/corpus/<target>/. Exit status 1 when any target failed.
set -u

seconds=$1
shift
failed=0
for t in "$@"; do
	bin=${FUZZ_BIN_DIR:-build/fuzz}/fuzz_$t
	seeds=testdata/fuzz/$t
	corpus=build/fuzz/corpus/$t
	artifacts=build/fuzz/artifacts/$t
	log=${FUZZ_BIN_DIR:-build/fuzz}/fuzz_$t.log
	mkdir -p "$corpus" "$artifacts" "$seeds"
	case $t in
	json | status) max_len=32768 ;;
	docker_demux) max_len=8192 ;;
	*) max_len=4096 ;;
	esac
	dict=
	[ -f "tests/fuzz/$t.dict" ] && dict=-dict=tests/fuzz/$t.dict
	# detect_leaks: a leak on any path of the parser is a failure too.
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
		-max_len="$max_len" -detect_leaks=1 -print_final_stats=1 \
		-artifact_prefix="$artifacts/" ${dict:+"$dict"} "$corpus" "$seeds" >"$log" 2>&1
	rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
	cov=$(echo "$done_line" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	corp=$(echo "$done_line" | sed -n 's/.*corp: \([0-9]*\).*/\1/p')
	if [ "$rc" -eq 0 ]; then
		echo "ok - fuzz $t (${seconds} s, ${runs:-?} runs, cov ${cov:-?}, corpus ${corp:-?})"
	else
		failed=1
		artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)
		echo "not ok - fuzz $t: exit $rc, input ${artifact:-none written} (log $log)"
		# The report's first lines and the top of the first stack.
		awk '/ERROR: |SUMMARY: |check failed|runtime error/ { print; next }
			/^ +#[0-9]+ / && frames < 8 { frames++; print }' "$log" |
			head -n 16 | sed 's/^/#   /'
	fi
done
exit $failed
