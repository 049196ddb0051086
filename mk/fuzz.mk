# mk/fuzz.mk - libFuzzer targets of tests/fuzz/ (included by the Makefile;
# also usable alone: make -f mk/fuzz.mk fuzz-smoke).
#
#   make fuzz          each target for FUZZ_SECONDS (default 60)
#   make fuzz-smoke    each target for FUZZ_SMOKE_SECONDS (default 20), for
#                      CI: one TAP line per target, non-zero exit on a crash
#   make fuzz-build    only build the targets
#   FUZZ_STRICT=1      also check the settings parser's error messages
#                      against README.md (one line, no secret); built apart,
#                      into build/fuzz/strict/
#
# The plugin's modules (plugin/*.c but main.c) are compiled again with
# clang, -fsanitize=fuzzer-no-link,address,undefined, into build/fuzz/.
# Seeds (and every crash found, kept as a regression input) live in
# testdata/fuzz/<target>/; what the fuzzer adds goes to build/fuzz/corpus/.

_fuzz_mk_default_goal := $(.DEFAULT_GOAL)

# clang, or Debian 12's clang-14 when only that is installed
FUZZ_CC ?= $(shell command -v clang || command -v clang-14 || echo clang)
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_DIR := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS := -O1 -g -std=gnu11 -D_GNU_SOURCE -Iplugin
FUZZ_LIB_SRC := $(filter-out plugin/main.c,$(wildcard plugin/*.c))
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:plugin/%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_LIB_HDR := $(wildcard plugin/*.h)
# The demultiplexer target needs plugin/docker.h; without it, it is left out.
FUZZ_TARGETS := json config header tar status $(if $(wildcard plugin/docker.h),docker_demux)
FUZZ_STRICT ?= 1
FUZZ_BIN_DIR := $(FUZZ_DIR)$(if $(filter 1,$(FUZZ_STRICT)),/strict)
FUZZ_BINS := $(FUZZ_TARGETS:%=$(FUZZ_BIN_DIR)/fuzz_%)
FUZZ_DEFS := $(if $(filter 1,$(FUZZ_STRICT)),-DFUZZ_STRICT)
# config_load() opens keycloak_realm_json: the target redirects fopen() to
# a sandbox folder (see tests/fuzz/fuzz_config.c).
FUZZ_LDFLAGS_config := -Wl,--wrap=fopen

.PHONY: fuzz fuzz-smoke fuzz-build fuzz-deps

fuzz-deps:
	@command -v $(FUZZ_CC) >/dev/null 2>&1 && \
	ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1 || { \
		echo "fuzz: installing clang and libclang-rt-14-dev"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq clang libclang-rt-14-dev libjsmn-dev libcurl4-openssl-dev >/dev/null; }

$(FUZZ_DIR)/obj/%.o: plugin/%.c $(FUZZ_LIB_HDR) | $(FUZZ_DIR)/obj fuzz-deps
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c -o $@ $<

$(FUZZ_DIR)/libplugin.a: $(FUZZ_LIB_OBJ)
	rm -f $@
	ar rcs $@ $(FUZZ_LIB_OBJ)

$(FUZZ_BIN_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libplugin.a
	mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_DEFS) -Wall -Wextra -fsanitize=fuzzer $(FUZZ_SAN) -o $@ $< \
		$(FUZZ_DIR)/libplugin.a $(FUZZ_LDFLAGS_$*) -lcurl

$(FUZZ_DIR)/obj:
	mkdir -p $@

fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	FUZZ_BIN_DIR=$(FUZZ_BIN_DIR) tests/fuzz/run.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: fuzz-build
	FUZZ_BIN_DIR=$(FUZZ_BIN_DIR) tests/fuzz/run.sh $(FUZZ_SMOKE_SECONDS) $(FUZZ_TARGETS)

# Including this file does not change the Makefile's default goal.
.DEFAULT_GOAL := $(_fuzz_mk_default_goal)
