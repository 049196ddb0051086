# ---- mutation testing: a benchmark of the tests, not part of check ----------
# Breaks the code one line at a time (tests/mutants/mutants.tsv) in a copy
# of the tree and runs the suites that should notice; prints "killed K of N"
# and every survivor. MUTANTS="word ..." runs the mutants whose id, guarantee
# or file contains a word; MUTANTS_REAL=1 adds the real-Keycloak suites.
# mutants-check: no build, no test; stale lines and selection words only.
.PHONY: mutants mutants-check
mutants: all asan
	python3 tests/mutants/run.py

mutants-check:
	python3 tests/mutants/run.py --check
