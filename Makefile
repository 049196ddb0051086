# drone-deps - build, test, bench, demo. `make help` lists the targets.
VERSION ?= 0.1.0
CC ?= cc
CFLAGS ?= -O2 -g
WARN := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wvla -Wno-format-nonliteral -Wno-format-truncation
CPPFLAGS += -D_GNU_SOURCE -DDRONE_DEPS_VERSION=\"$(VERSION)\"
LDLIBS_DEV := -lcurl

SRC := $(wildcard plugin/*.c)
HDR := $(wildcard plugin/*.h)
OBJ := $(SRC:plugin/%.c=build/obj/%.o)
ASAN_OBJ := $(SRC:plugin/%.c=build/asan/%.o)
SAN := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

.PHONY: all asan clean help deps check unit demo bench lint fmt fmt-check

all: build/drone-deps

include mk/static.mk mk/image.mk mk/fuzz.mk mk/bench.mk mk/keycloak-image.mk mk/runners.mk mk/traefik.mk
include mk/mutants.mk

# Debian packages the build and the tests need; installed only when missing.
PACKAGES := gcc make libc6-dev libcurl4-openssl-dev libjsmn-dev libcmocka-dev \
	python3 openssl util-linux procps ca-certificates file musl-tools valgrind curl \
	dpkg-dev cppcheck clang-format clang-tidy strace
deps:
	@missing=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$(echo $$missing | sed 's/^/ /')"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

build/obj/%.o: plugin/%.c $(HDR) | build/obj
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -c -o $@ $<

build/drone-deps: $(OBJ)
	$(CC) $(CFLAGS) -o $@ $(OBJ) $(LDLIBS_DEV)

asan: build/asan/drone-deps
build/asan/%.o: plugin/%.c $(HDR) | build/asan
	$(CC) $(CPPFLAGS) -O1 -g $(SAN) $(WARN) -c -o $@ $<
build/asan/drone-deps: $(ASAN_OBJ)
	$(CC) $(SAN) -o $@ $(ASAN_OBJ) $(LDLIBS_DEV)

build/obj build/asan:
	mkdir -p $@

clean:
	rm -rf build/obj build/asan build/drone-deps build/tests build/tests-plain build/fuzz build/bench

help:
	@echo "make              build build/drone-deps (dev build, Debian's libcurl)"
	@echo "make demo         a full warm cycle against a real Keycloak it starts (KEYCLOAK=stub:"
	@echo "                  the bundled stand-in; KEYCLOAK_URL=... KEYCLOAK_ADMIN_PASSWORD=...: yours)"
	@echo "make check        every test suite; ends with 'N passed, N failed, N skipped'"
	@echo "make bench        benchmarks that print figures (bench-compare: against curl+jq and"
	@echo "                  Keycloak's own admin client; bench-real: the same on a real Keycloak)"
	@echo "make fuzz         libFuzzer targets, FUZZ_SECONDS each (fuzz-smoke: the CI run)"
	@echo "make static       static musl binary (TLS=mbedtls or TLS=openssl)"
	@echo "make image        the BusyBox plugin image"
	@echo "make keycloak-image  a real Keycloak image for cold deploys, built locally"
	@echo "make runners      real Drone (and Woodpecker) runners for the runners suite"
	@echo "make lint / fmt   cppcheck + clang-tidy / clang-format"
	@echo "make mutants      mutation testing of the tests (MUTANTS=word: a subset; MUTANTS_REAL=1)"

# ---- unit tests (cmocka, TAP output), built with ASan+UBSan ----
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/tests/%)
LIB_ASAN_OBJ := $(filter-out build/asan/main.o,$(ASAN_OBJ))

build/tests/%: tests/unit/%.c tests/unit/unit.h $(LIB_ASAN_OBJ) | build/tests
	$(CC) $(CPPFLAGS) -O1 -g $(SAN) $(WARN) $(UNIT_WRAP) -o $@ $< $(LIB_ASAN_OBJ) -lcmocka $(LDLIBS_DEV)

# The hardening tests watch every free() and realloc() of the modules for
# a secret left behind (not under valgrind, which has its own allocator).
build/tests/test_hardening: UNIT_WRAP = -DUNIT_WRAP_ALLOC -Wl,--wrap=free -Wl,--wrap=realloc

build/tests build/tests-plain:
	mkdir -p $@

# The same unit tests without sanitizers, for valgrind memcheck.
UNIT_PLAIN_BIN := $(UNIT_SRC:tests/unit/%.c=build/tests-plain/%)
LIB_OBJ := $(filter-out build/obj/main.o,$(OBJ))
build/tests-plain/%: tests/unit/%.c tests/unit/unit.h $(LIB_OBJ) | build/tests-plain
	$(CC) $(CPPFLAGS) -O1 -g $(WARN) -o $@ $< $(LIB_OBJ) -lcmocka $(LDLIBS_DEV)

# Every binary runs; any failing one fails the target (the loop alone would
# return only the last one's status).
unit: $(UNIT_BIN)
	@rc=0; for t in $(UNIT_BIN); do $$t || rc=1; done; exit $$rc

# ---- the two commands of the README -----------------------------------------
demo: deps all
	tests/demo.sh build/drone-deps

# Every suite, counted by tests/run-suites.sh. E2E_BINS are the binaries the
# end-to-end suite drives: the dev build, the ASan+UBSan build, and the
# static builds with both TLS libraries (the release binary is the mbedTLS
# one). e2e-real runs the same suite with the release binary against a real
# Keycloak (tools/keycloak.sh), differential the stand-in against it.
E2E = python3 tests/e2e/test_warm.py
COLD = python3 tests/e2e/test_cold.py
HARDENING = python3 tests/e2e/test_hardening.py
GUARANTEES = python3 tests/e2e/test_guarantees.py
check: deps
	$(MAKE) all asan $(UNIT_BIN) $(UNIT_PLAIN_BIN)
	$(MAKE) static TLS=mbedtls
	$(MAKE) static TLS=openssl
	$(MAKE) docker-up
	$(MAKE) image
	$(MAKE) keycloak-image
	$(MAKE) warm-pg-images
	-$(MAKE) runners
	-$(MAKE) traefik
	tests/run-suites.sh \
		unit-json build/tests/test_json \
		unit-naming build/tests/test_naming \
		unit-config build/tests/test_config \
		unit-binding build/tests/test_binding \
		unit-sha256 build/tests/test_sha256 \
		unit-hardening build/tests/test_hardening \
		kcstub "python3 tests/kcstub/test_kcstub.py" \
		kcstub-image "sh tests/kcstub/image/test_image.sh" \
		e2e-dev "DRONE_DEPS_BIN=build/drone-deps $(E2E)" \
		e2e-asan "DRONE_DEPS_BIN=build/asan/drone-deps $(E2E)" \
		e2e-static "DRONE_DEPS_BIN=build/static/drone-deps $(E2E)" \
		e2e-static-openssl "DRONE_DEPS_BIN=build/static-openssl/drone-deps $(E2E)" \
		e2e-hardening "DRONE_DEPS_BIN=build/drone-deps $(HARDENING)" \
		e2e-hardening-asan "DRONE_DEPS_BIN=build/asan/drone-deps $(HARDENING)" \
		e2e-real "KEYCLOAK_BACKEND=real DRONE_DEPS_BIN=build/static/drone-deps $(E2E)" \
		differential "python3 tests/e2e/test_differential.py" \
		pool-differential "python3 tests/e2e/test_pool_differential.py" \
		e2e-valgrind "DRONE_DEPS_BIN=tests/valgrind.sh DRONE_DEPS_WRAPPED=1 $(E2E)" \
		e2e-guarantees "DRONE_DEPS_BIN=build/drone-deps $(GUARANTEES)" \
		e2e-guarantees-asan "DRONE_DEPS_BIN=build/asan/drone-deps $(GUARANTEES)" \
		e2e-guarantees-real "KEYCLOAK_BACKEND=real DRONE_DEPS_BIN=build/static/drone-deps $(GUARANTEES)" \
		e2e-hardening-real "KEYCLOAK_BACKEND=real DRONE_DEPS_BIN=build/static/drone-deps $(HARDENING)" \
		unit-valgrind "$(foreach t,$(UNIT_PLAIN_BIN),VALGRIND_TARGET=$(t) tests/valgrind.sh && ) true" \
		cold-static "DRONE_DEPS_BIN=build/static/drone-deps $(COLD)" \
		cold-asan "DRONE_DEPS_BIN=build/asan/drone-deps $(COLD)" \
		cold-real "DRONE_DEPS_BIN=build/static/drone-deps $(COLD_REAL)" \
		static-mbedtls "tests/static/run.sh build/static/drone-deps" \
		static-openssl "tests/static/run.sh build/static-openssl/drone-deps" \
		image "tests/image/run.sh $(IMAGE) build/static/drone-deps" \
		runners "tests/runners/run.sh $(IMAGE)" \
		host "python3 tests/host/run.py $(IMAGE)" \
		e2e-status "DRONE_DEPS_BIN=build/asan/drone-deps python3 tests/e2e/test_status.py" \
		e2e-status-real "KEYCLOAK_BACKEND=real DRONE_DEPS_BIN=build/static/drone-deps python3 tests/e2e/test_status.py" \
		e2e-edges "DRONE_DEPS_BIN=build/asan/drone-deps python3 tests/e2e/test_edges.py" \
		e2e-down "DRONE_DEPS_BIN=build/asan/drone-deps python3 tests/e2e/test_down.py" \
		e2e-down-real "KEYCLOAK_BACKEND=real DRONE_DEPS_BIN=build/static/drone-deps python3 tests/e2e/test_down.py warm:" \
		warm-action "DRONE_DEPS_BIN=build/static/drone-deps python3 tests/e2e/test_warm_action.py" \
		pool-stub "DRONE_DEPS_BIN=build/asan/drone-deps python3 tests/e2e/test_pool.py" \
		warm-pg "DRONE_DEPS_BIN=build/static/drone-deps python3 tests/e2e/test_warm_pg.py" \
		pool-real "KEYCLOAK_BACKEND=real DRONE_DEPS_BIN=build/static/drone-deps python3 tests/e2e/test_pool.py" \
		run-suites "sh tests/run-suites-test.sh" \
		lint tests/lint.sh \
		fuzz-smoke "$(MAKE) -s fuzz-smoke"; \
	rc=$$?; $(MAKE) -s docker-down; exit $$rc

bench: deps all
	$(MAKE) static TLS=mbedtls
	$(MAKE) static TLS=openssl
	python3 tests/bench/warm.py build/drone-deps build/static/drone-deps build/static-openssl/drone-deps
	$(MAKE) docker-up image
	python3 tests/bench/cold.py build/static/drone-deps; rc=$$?; \
	tools/sizes.sh build/static/drone-deps $(IMAGE); \
	$(MAKE) -s docker-down; exit $$rc
	$(MAKE) bench-compare
	$(MAKE) bench-real

# ---- style ---------------------------------------------------------------------
lint: deps
	tests/lint.sh

fmt:
	clang-format -i $(SRC) $(HDR) tests/unit/*.c tests/unit/*.h

fmt-check:
	clang-format --dry-run --Werror $(SRC) $(HDR)
