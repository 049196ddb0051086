# mk/bench.mk - the side-by-side benchmark (tests/bench/compare.py),
# included by the Makefile.
#
#   make bench-compare    drone-deps (dev and static builds), curl+jq and the
#                         official Node admin client, the same realm cycle
#                         against the Keycloak stand-in at 2 ms and 20 ms per
#                         request, then drone-deps at concurrency 1-32.
#                         About 2 minutes. BENCH_ROUNDS=N changes the rounds
#                         per latency (default 50).
#
#   make bench-real       the same cycle on a real Keycloak (tools/keycloak.sh)
#                         with 0 and 200 other realms on it: its start time,
#                         time to hook, teardown, CPU, requests (before the
#                         hook, and in all) and the admin token's size, for
#                         drone-deps (static: admin password, CI client, claim
#                         from the pool), curl+jq, the Node admin client and
#                         python-keycloak. About 27 minutes
#                         (BENCH_REAL_ROUNDS, default 20; BENCH_REAL_COUNTS).
#
#   make bench-scale      N parents and C concurrent runs in waves on a real
#                         Keycloak: start -> hook and teardown p50/p95, runs
#                         per minute, realms on the server over time, each
#                         request's time before the hook; no pool,
#                         per-parent pools, the shared pool. SCALE_DB=postgres
#                         runs it on the warm instance that `action: warm`
#                         deploys with warm_db postgres on the local swarm
#                         (after make warm-pg-images; removed at the end),
#                         SCALE_DB=dev-file on the warm H2 one; unset, on
#                         tools/keycloak.sh's in-memory H2.
#
# Needs curl, jq and Node (Debian packages, installed when missing) and
# @keycloak/keycloak-admin-client from npm, installed on demand into
# tests/bench/compare/node_modules from the committed package-lock.json;
# bench-real also python-keycloak from PyPI, pinned in
# tests/bench/compare/python-requirements.txt, in a venv under build/bench.

_bench_mk_default_goal := $(.DEFAULT_GOAL)

BENCH_COMPARE_DIR := tests/bench/compare
BENCH_NODE_MODULES := $(BENCH_COMPARE_DIR)/node_modules/.package-lock.json
BENCH_LAUNCH := build/bench/launch
BENCH_PYKC := build/bench/pykc/bin/python
BENCH_PACKAGES := curl jq nodejs npm musl-tools python3

.PHONY: bench-compare bench-compare-deps bench-real bench-scale

bench-compare-deps:
	@missing=$$(for c in curl jq node npm musl-gcc python3; do \
		command -v $$c >/dev/null 2>&1 || echo $$c; done); \
	if [ -n "$$missing" ]; then \
		echo "bench-compare: installing $(BENCH_PACKAGES) (missing:$$(echo $$missing | sed 's/^/ /'))"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq $(BENCH_PACKAGES) >/dev/null; \
	fi

$(BENCH_NODE_MODULES): $(BENCH_COMPARE_DIR)/package.json $(BENCH_COMPARE_DIR)/package-lock.json | bench-compare-deps
	cd $(BENCH_COMPARE_DIR) && npm ci --no-audit --no-fund --loglevel=error

# Static and tiny, so that a command forked from it does not start with a
# large address space (see launch.c).
$(BENCH_LAUNCH): $(BENCH_COMPARE_DIR)/launch.c | bench-compare-deps
	mkdir -p $(dir $@)
	musl-gcc -static -Os -Wall -Wextra -o $@ $<

bench-compare: bench-compare-deps $(BENCH_NODE_MODULES) $(BENCH_LAUNCH)
	$(MAKE) build/drone-deps
	$(MAKE) static TLS=mbedtls
	python3 tests/bench/compare.py build/drone-deps build/static/drone-deps

$(BENCH_PYKC): $(BENCH_COMPARE_DIR)/python-requirements.txt
	rm -rf build/bench/pykc
	python3 -m venv build/bench/pykc 2>/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null && \
		python3 -m venv build/bench/pykc; }
	build/bench/pykc/bin/pip install -q --no-deps -r $<
	touch $@

bench-real: bench-compare-deps $(BENCH_NODE_MODULES) $(BENCH_LAUNCH) $(BENCH_PYKC)
	$(MAKE) static TLS=mbedtls
	python3 tests/bench/real.py build/static/drone-deps

# Many parents, concurrent runs in waves, on a real Keycloak: no pool, a
# pool per parent, the instance's shared pool (tests/bench/scale.py; the
# SCALE_* variables it documents change the run, SCALE_DB=postgres or
# dev-file the server: the warm instance deployed by action warm on the
# local swarm, under test_warm_pg.py's names, all of it removed at the end
# even on failure or a stop). The full run (100 parents, 16 concurrent, 4
# waves, 0 and 200 other realms) takes an hour or more on 2 busy cores (8
# concurrent and 2 waves took 20 minutes); one pool or one count of other
# realms at a time (SCALE_MODES, SCALE_OTHERS) keeps each piece short.
bench-scale: build/drone-deps
	python3 tests/bench/scale.py build/drone-deps

# Including this file does not change the Makefile's default goal.
.DEFAULT_GOAL := $(_bench_mk_default_goal)
