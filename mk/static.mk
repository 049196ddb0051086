# Static musl build of drone-deps, included by the top-level Makefile.
#
#   make static                 build/static/drone-deps           (mbedTLS)
#   make static TLS=openssl     build/static-openssl/drone-deps   (OpenSSL)
#   make static-deps            only the cached libcurl + TLS prefix
#   make static-clean           drop the binaries (keeps the cached prefix)
#   make static-distclean       drop the prefix and the Debian sources too
#
# Inputs from the including Makefile: SRC (the plugin/*.c list), VERSION.
#
# libcurl and the TLS library are compiled from Debian's source packages
# (apt-get source; tools/static-deps.sh adds a deb-src entry when missing)
# into build/static-deps/<tls>/, once: that prefix is rebuilt only when it is
# missing (static-distclean, or a new checkout).  curl speaks HTTP, HTTPS and
# unix sockets only; see tools/static-deps.sh for the full configuration.
#
# mbedTLS and /dev/urandom: mbedTLS 2.28 calls getrandom() only under
# glibc; under musl it opens /dev/urandom, so HTTPS fails in any root
# without /dev.  tools/static-deps.sh builds it with
# MBEDTLS_NO_PLATFORM_ENTROPY + MBEDTLS_ENTROPY_HARDWARE_ALT and puts
# tools/mbedtls-entropy.c (a getrandom() source) into libmbedcrypto.a.
# mbedTLS 2.28 speaks TLS 1.2 only (1.3 is experimental there) and does not
# match IP addresses against certificates: use host names with HTTPS, or
# TLS=openssl.
#
# musl-gcc does not search /usr/include (glibc's headers), on purpose; the
# only header taken from there, jsmn.h (libjsmn-dev), is copied into a
# private include folder instead of adding -I/usr/include.

_static_mk_default_goal := $(.DEFAULT_GOAL)

TLS ?= mbedtls
MUSL_CC ?= musl-gcc
STATIC_DEPS_DIR := build/static-deps
STATIC_SRC_DIR := $(STATIC_DEPS_DIR)/src
STATIC_INC := $(STATIC_DEPS_DIR)/include
STATIC_PREFIX = $(STATIC_DEPS_DIR)/$(TLS)

ifeq ($(TLS),mbedtls)
STATIC_DIR := build/static
STATIC_TLS_LIBS := -lmbedtls -lmbedx509 -lmbedcrypto
else ifeq ($(TLS),openssl)
STATIC_DIR := build/static-openssl
STATIC_TLS_LIBS := -lssl -lcrypto
else
$(error TLS must be mbedtls or openssl, not '$(TLS)')
endif

STATIC_BIN := $(STATIC_DIR)/drone-deps
STATIC_OBJS := $(addprefix $(STATIC_DIR)/obj/,$(notdir $(SRC:.c=.o)))

# STATIC_EXTRA_CFLAGS: for the including Makefile (e.g. a -std or -D).
STATIC_CFLAGS ?= -Os -ffunction-sections -fdata-sections -Wall -Wextra -Wno-format-truncation
STATIC_CPPFLAGS = -D_GNU_SOURCE -DDRONE_DEPS_VERSION=\"$(VERSION)\" -Iplugin \
	-I$(STATIC_INC) -I$(STATIC_PREFIX)/include
STATIC_LDFLAGS := -static -s -Wl,--gc-sections
# The link line is written out: curl-config --static-libs would name the
# host's library paths and libraries the static prefix does not have.
STATIC_LIBS = -L$(STATIC_PREFIX)/lib -lcurl $(STATIC_TLS_LIBS)
_static_flags = $(MUSL_CC) $(STATIC_CPPFLAGS) $(STATIC_CFLAGS) \
	$(STATIC_EXTRA_CFLAGS) $(STATIC_LDFLAGS) $(STATIC_LIBS)

.PHONY: static static-deps static-clean static-distclean static-print-bin

static: $(STATIC_BIN)

static-deps: $(STATIC_PREFIX)/.done

static-print-bin:
	@echo $(STATIC_BIN)

$(STATIC_PREFIX)/.done:
	tools/static-deps.sh $(TLS) $(STATIC_PREFIX) $(STATIC_SRC_DIR)

$(STATIC_INC)/jsmn.h: $(wildcard /usr/include/jsmn.h)
	@test -f /usr/include/jsmn.h || { echo "static: /usr/include/jsmn.h missing: apt-get install libjsmn-dev" >&2; exit 1; }
	mkdir -p $(@D)
	cp /usr/include/jsmn.h $@

# Rebuild everything when the compiler flags (VERSION included) change.
$(STATIC_DIR)/.flags: _static_force
	@mkdir -p $(@D)
	@echo '$(_static_flags)' | cmp -s - $@ || echo '$(_static_flags)' >$@

.PHONY: _static_force
_static_force:

define _static_compile
$(STATIC_DIR)/obj/$(notdir $(1:.c=.o)): $(1) $(STATIC_DIR)/.flags $(STATIC_PREFIX)/.done $(STATIC_INC)/jsmn.h
	@mkdir -p $$(@D)
	$$(MUSL_CC) $$(STATIC_CPPFLAGS) $$(STATIC_CFLAGS) $$(STATIC_EXTRA_CFLAGS) -MMD -MP -c $(1) -o $$@
endef
$(foreach s,$(SRC),$(eval $(call _static_compile,$(s))))
-include $(STATIC_OBJS:.o=.d)

$(STATIC_BIN): $(STATIC_OBJS) $(STATIC_DIR)/.flags
	@test -n "$(STATIC_OBJS)" || { echo "static: no C sources (SRC is empty)" >&2; exit 1; }
	$(MUSL_CC) $(STATIC_CFLAGS) $(STATIC_EXTRA_CFLAGS) $(STATIC_LDFLAGS) -o $@ $(STATIC_OBJS) $(STATIC_LIBS)
	@ls -l $@ | awk '{ printf "static: %s %d bytes\n", $$NF, $$5 }'

static-clean:
	rm -rf build/static build/static-openssl

static-distclean: static-clean
	rm -rf $(STATIC_DEPS_DIR)

.DEFAULT_GOAL := $(_static_mk_default_goal)
