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

.PHONY: all asan clean help

all: build/drone-deps

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
	rm -rf build/obj build/asan build/drone-deps build/tests

help:
	@echo "make          build build/drone-deps (dev build, Debian's libcurl)"
	@echo "make asan     build build/asan/drone-deps with ASan+UBSan"

# ---- unit tests (cmocka, TAP output), built with ASan+UBSan ----
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/tests/%)
LIB_ASAN_OBJ := $(filter-out build/asan/main.o,$(ASAN_OBJ))

build/tests/%: tests/unit/%.c tests/unit/unit.h $(LIB_ASAN_OBJ) | build/tests
	$(CC) $(CPPFLAGS) -O1 -g $(SAN) $(WARN) -o $@ $< $(LIB_ASAN_OBJ) -lcmocka $(LDLIBS_DEV)

build/tests:
	mkdir -p $@

unit: $(UNIT_BIN)
	@for t in $(UNIT_BIN); do $$t; done
