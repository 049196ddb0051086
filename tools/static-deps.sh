#!/bin/sh
# Build the static musl dependencies of drone-deps from Debian's source
# packages into a prefix: libcurl plus its TLS library.
#
# Usage: tools/static-deps.sh TLS PREFIX SRCDIR
#   TLS     mbedtls (default build) or openssl
#   PREFIX  where include/ and lib/ go (e.g. build/static-deps/mbedtls)
#   SRCDIR  where `apt-get source` downloads and unpacks (shared by both)
#
# The prefix is complete when PREFIX/.done exists; mk/static.mk only calls
# this script when it does not.  Nothing is downloaded but Debian source
# packages (through apt, signatures checked by dpkg-source).
#
# Needs (as root, installed when missing): musl-tools, dpkg-dev, make, perl.
set -eu

TLS=${1:?usage: static-deps.sh TLS PREFIX SRCDIR}
PREFIX=${2:?usage: static-deps.sh TLS PREFIX SRCDIR}
SRCDIR=${3:?usage: static-deps.sh TLS PREFIX SRCDIR}
TOOLS=$(cd "$(dirname "$0")" && pwd)
JOBS=$(nproc 2>/dev/null || echo 2)
CC=${MUSL_CC:-musl-gcc}
# Size first: the binary ships in a plugin image pulled by every CI run.
OPT="-Os -ffunction-sections -fdata-sections"

case $TLS in
mbedtls | openssl) ;;
*)
	echo "static-deps: TLS must be mbedtls or openssl, not '$TLS'" >&2
	exit 64
	;;
esac

log() { printf 'static-deps[%s]: %s\n' "$TLS" "$*" >&2; }

need_packages() {
	missing=
	for p in "$@"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	log "installing$missing"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
}

# fetch_source PKG: unpack Debian's source of PKG under SRCDIR/PKG once and
# print the unpacked directory.  Tries every version the archive lists,
# newest (apt's own choice) first: a mirror may lack one version's .dsc
# (seen for a fresh security update of openssl).
fetch_source() {
	pkg=$1
	dir=$SRCDIR/$pkg
	# Both TLS builds may run at once (make -j) and share curl's source.
	exec 9>"$SRCDIR/.lock-$pkg"
	flock 9
	found=$(ls -d "$dir/$pkg"-[0-9]*/ 2>/dev/null | head -n 1 || true)
	if [ -n "$found" ]; then
		echo "${found%/}"
		return 0
	fi
	"$TOOLS/apt-deb-src.sh" >&2
	mkdir -p "$dir"
	ok=
	for v in $(apt-cache showsrc "$pkg" | sed -n 's/^Version: //p' | sort -rVu); do
		spec=$pkg=$v
		log "apt-get source $spec"
		# Success is judged by the unpacked tree, not apt's noise (the _apt
		# sandbox user cannot write here: that warning is expected).
		(cd "$dir" && apt-get source -qq "$spec") >"$dir.log" 2>&1 || true
		grep -Ev 'unsandboxed as root|^dpkg-source: info: applying' "$dir.log" >&2 || true
		found=$(ls -d "$dir/$pkg"-[0-9]*/ 2>/dev/null | head -n 1 || true)
		[ -n "$found" ] && ok=1 && break
		rm -rf "${dir:?}"/*
	done
	if [ -z "$ok" ]; then
		log "could not fetch the source of $pkg from the Debian archive"
		exit 1
	fi
	echo "${found%/}"
}

build_mbedtls() {
	src=$(fetch_source mbedtls)
	log "building $(basename "$src")"
	cfg=$src/include/mbedtls/config.h
	# The getrandom fix (see tools/mbedtls-entropy.c): no /dev/urandom
	# platform source, our getrandom() source registered as "hardware".
	# Only the two switches change; the rest is upstream's default config.
	sed -i \
		-e 's|^//#define MBEDTLS_NO_PLATFORM_ENTROPY$|#define MBEDTLS_NO_PLATFORM_ENTROPY|' \
		-e 's|^//#define MBEDTLS_ENTROPY_HARDWARE_ALT$|#define MBEDTLS_ENTROPY_HARDWARE_ALT|' \
		"$cfg"
	for m in MBEDTLS_NO_PLATFORM_ENTROPY MBEDTLS_ENTROPY_HARDWARE_ALT; do
		grep -q "^#define $m\$" "$cfg" || {
			log "could not enable $m in $cfg"
			exit 1
		}
	done
	make -C "$src/library" -s -j"$JOBS" clean >/dev/null
	make -C "$src/library" -s -j"$JOBS" CC="$CC" CFLAGS="$OPT" static
	mkdir -p "$PREFIX/include" "$PREFIX/lib"
	cp -R "$src/include/mbedtls" "$src/include/psa" "$PREFIX/include/"
	cp "$src/library/libmbedcrypto.a" "$src/library/libmbedx509.a" \
		"$src/library/libmbedtls.a" "$PREFIX/lib/"
	"$CC" $OPT -I"$PREFIX/include" -c "$TOOLS/mbedtls-entropy.c" \
		-o "$PREFIX/lib/mbedtls-entropy.o"
	ar rcs "$PREFIX/lib/libmbedcrypto.a" "$PREFIX/lib/mbedtls-entropy.o"
	rm -f "$PREFIX/lib/mbedtls-entropy.o"
}

build_openssl() {
	src=$(fetch_source openssl)
	log "building $(basename "$src")"
	# no-async: musl has no makecontext(); no-secure-memory: mem_sec.c
	# wants <linux/mman.h>, which musl-gcc cannot see; the rest only trims
	# what libcurl never uses.  OPENSSLDIR is never read: curl is built with
	# --disable-openssl-auto-load-config and its own CA bundle path.
	(cd "$src" && ./Configure linux-x86_64 \
		--prefix="$PREFIX" --libdir=lib --openssldir=/etc/ssl \
		no-shared no-module no-dso no-engine no-async no-afalgeng \
		no-secure-memory no-tests no-legacy no-comp no-ssl3 \
		no-srp no-idea no-mdc2 no-rc5 no-camellia no-seed no-whirlpool \
		no-sm2 no-sm3 no-sm4 no-gost no-cms no-ts no-dtls \
		CC="$CC" CFLAGS="$OPT" >/dev/null)
	make -C "$src" -s -j"$JOBS" build_libs >/dev/null
	make -C "$src" -s install_dev >/dev/null
}

build_curl() {
	src=$(fetch_source curl)
	log "building $(basename "$src")"
	case $TLS in
	mbedtls) tlsopt="--with-mbedtls=$PREFIX" libs="-lmbedtls -lmbedx509 -lmbedcrypto" ;;
	openssl) tlsopt="--with-openssl=$PREFIX --disable-openssl-auto-load-config" libs="-lssl -lcrypto" ;;
	esac
	# The shipped configure is used as is (AM_MAINTAINER_MODE keeps make
	# from regenerating it): Debian's patches to configure.ac only concern
	# LDAP, GSSAPI, shell completions and library naming, all disabled here;
	# the code fixes (CVEs) are in C files and apply.
	rm -rf "$src/_static-$TLS"
	mkdir -p "$src/_static-$TLS"
	(cd "$src/_static-$TLS" && ../configure -q \
		CC="$CC" CFLAGS="$OPT" CPPFLAGS="-I$PREFIX/include" \
		LDFLAGS="-L$PREFIX/lib -static" LIBS="$libs" \
		--prefix="$PREFIX" --disable-shared --enable-static \
		--disable-dependency-tracking --enable-symbol-hiding \
		$tlsopt --without-default-ssl-backend \
		--with-ca-bundle=/etc/ssl/certs/ca-certificates.crt \
		--without-ca-path --without-ca-fallback \
		--enable-http --enable-unix-sockets --enable-proxy \
		--disable-ftp --disable-file --disable-ldap --disable-ldaps \
		--disable-rtsp --disable-dict --disable-telnet --disable-tftp \
		--disable-pop3 --disable-imap --disable-smb --disable-smtp \
		--disable-gopher --disable-mqtt --disable-websockets \
		--disable-manual --disable-libcurl-option --disable-verbose \
		--disable-sspi --disable-crypto-auth --disable-ntlm \
		--disable-ntlm-wb --disable-tls-srp --disable-cookies \
		--disable-doh --disable-mime --disable-netrc \
		--disable-progress-meter --disable-dnsshuffle \
		--disable-get-easy-options --disable-alt-svc --disable-hsts \
		--without-zlib --without-brotli --without-zstd --without-libpsl \
		--without-libidn2 --without-nghttp2 --without-nghttp3 \
		--without-ngtcp2 --without-quiche --without-msh3 \
		--without-libssh2 --without-libssh --without-wolfssh \
		--without-librtmp --without-libgsasl --without-hyper \
		--without-zsh-functions-dir --without-fish-functions-dir \
		>/dev/null)
	make -C "$src/_static-$TLS/lib" -s -j"$JOBS" >/dev/null
	make -C "$src/_static-$TLS/lib" -s install >/dev/null
	make -C "$src/_static-$TLS/include" -s install >/dev/null
}

need_packages musl-tools dpkg-dev make perl

rm -rf "$PREFIX"
mkdir -p "$PREFIX" "$SRCDIR"
PREFIX=$(cd "$PREFIX" && pwd)
SRCDIR=$(cd "$SRCDIR" && pwd)
start=$(date +%s)
build_"$TLS"
build_curl
(cd "$PREFIX" && rm -rf share bin lib/pkgconfig lib/*.la)
touch "$PREFIX/.done"
log "done in $(($(date +%s) - start)) s: $PREFIX"
