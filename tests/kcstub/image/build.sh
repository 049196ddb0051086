#!/bin/sh
# build.sh TAG: a local Docker image of the Keycloak stand-in, laid out like
# the Keycloak image (entrypoint /opt/keycloak/bin/kc.sh, command start-dev,
# port 8080), assembled from this machine's own files only: no registry, no
# base image.
#
#   /usr/bin/python3.11 and the shared libraries ldd lists for it and for the
#     standard library's extension modules
#   /usr/lib/python3.11 without tests, idlelib, tkinter, ensurepip, caches
#   /bin/busybox from Debian's busybox-static, with a link per applet
#   /opt/kcstub/kcstub.py        the stand-in
#   /opt/keycloak/bin/kc.sh      "kc.sh start-dev" runs it on 0.0.0.0:8080
#
# Environment: DOCKER (default /usr/bin/docker).
set -eu

tag=${1:?usage: build.sh TAG}
here=$(cd "$(dirname "$0")" && pwd)
stub=$here/../kcstub.py
docker=${DOCKER:-/usr/bin/docker}
python=/usr/bin/python3.11
pylib=/usr/lib/python3.11

say() { echo "build.sh: $*" >&2; }

[ -x "$python" ] || { say "$python not found"; exit 1; }
[ -d "$pylib" ] || { say "$pylib not found"; exit 1; }
[ -f "$stub" ] || { say "$stub not found"; exit 1; }

busybox=/bin/busybox
if ! [ -x "$busybox" ] || ! "$busybox" --list >/dev/null 2>&1 || ! dpkg -s busybox-static >/dev/null 2>&1; then
	if ! dpkg -s busybox-static >/dev/null 2>&1; then
		say "installing busybox-static"
		apt-get install -y busybox-static >/dev/null 2>&1 ||
			{ apt-get update >/dev/null 2>&1 && apt-get install -y busybox-static >/dev/null; }
	fi
fi
# busybox-static ships /bin/busybox (a static binary); make sure it is one.
if file -L "$busybox" 2>/dev/null | grep -q 'dynamically linked'; then
	say "$busybox is not the static busybox"
	exit 1
fi

root=$(mktemp -d "${TMPDIR:-/tmp}/kcstub-image.XXXXXX")
trap 'rm -rf "$root"' EXIT INT TERM

mkdir -p "$root/bin" "$root/usr/bin" "$root/usr/lib" "$root/etc" "$root/tmp" \
	"$root/opt/kcstub" "$root/opt/keycloak/bin" "$root/run/secrets" "$root/root"
chmod 1777 "$root/tmp"

# Python and its standard library. Test suites, GUI and packaging helpers,
# caches and the test-only extension modules are left out.
cp -p "$python" "$root/usr/bin/python3.11"
ln -s python3.11 "$root/usr/bin/python3"
tar -C /usr/lib -c \
	--exclude='python3.11/test' --exclude='python3.11/*/test' --exclude='python3.11/*/tests' \
	--exclude='python3.11/idlelib' --exclude='python3.11/tkinter' --exclude='python3.11/turtledemo' \
	--exclude='python3.11/ensurepip' --exclude='__pycache__' --exclude='*.pyc' \
	--exclude='python3.11/sitecustomize.py' --exclude='python3.11/config-*' \
	--exclude='lib-dynload/_test*' --exclude='lib-dynload/_ctypes_test*' \
	--exclude='lib-dynload/_xxtestfuzz*' --exclude='lib-dynload/xxlimited*' \
	--exclude='lib-dynload/_xxsubinterpreters*' --exclude='lib-dynload/nis.*' \
	--exclude='lib-dynload/ossaudiodev*' --exclude='lib-dynload/_dbm*' \
	python3.11 | tar -C "$root/usr/lib" -x

# Shared libraries, at the paths ldd reports, copied as regular files.
libs=$(for f in "$python" "$root"/usr/lib/python3.11/lib-dynload/*.so; do ldd "$f"; done |
	awk '/=> \// {print $3} /^[ \t]+\// {print $1}' | sort -u)
missing=$(for f in "$python" "$root"/usr/lib/python3.11/lib-dynload/*.so; do ldd "$f"; done | grep 'not found' || true)
if [ -n "$missing" ]; then
	say "unresolved libraries:"
	echo "$missing" >&2
	exit 1
fi
# glibc loads libgcc_s with dlopen (pthread_exit and cancellation unwind it),
# so ldd does not list it; without it the interpreter dies with SIGSEGV when
# it exits with threads still running.
for name in libgcc_s.so.1; do
	lib=$(/sbin/ldconfig -p | awk -v n="$name" '$1 == n && /x86-64/ {print $NF; exit}')
	[ -n "$lib" ] || { say "$name not found by ldconfig"; exit 1; }
	libs="$libs $lib"
done
for lib in $libs; do
	mkdir -p "$root$(dirname "$lib")"
	cp -L "$lib" "$root$lib"
done

# BusyBox with its applets.
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
	[ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
keycloak:x:1000:0:keycloak:/opt/keycloak:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"

cp "$stub" "$root/opt/kcstub/kcstub.py"
cat >"$root/opt/keycloak/bin/kc.sh" <<'EOF'
#!/bin/sh
# kc.sh of the kcstub image: the Keycloak 26 stand-in behind Keycloak's
# command line. "kc.sh start-dev" (or "start") serves HTTP on 0.0.0.0:8080,
# admin credentials from KC_BOOTSTRAP_ADMIN_USERNAME/KC_BOOTSTRAP_ADMIN_PASSWORD
# or KEYCLOAK_ADMIN/KEYCLOAK_ADMIN_PASSWORD (default admin/admin); without
# either password variable, /run/secrets/admin_password is read, as the
# Co-op Cloud recipe's entrypoint does. Other Keycloak options are accepted
# and ignored, except --http-port. KCSTUB_ARGS adds stand-in options.
set -eu
cmd=${1:-start-dev}
[ $# -gt 0 ] && shift
case $cmd in
start-dev | start) ;;
--version | -v | version)
	echo "Keycloak 26.4.0 (kcstub stand-in)"
	exit 0
	;;
*)
	echo "kc.sh: unsupported command '$cmd': this image runs the Keycloak stand-in (use start-dev)" >&2
	exit 2
	;;
esac
port=8080
while [ $# -gt 0 ]; do
	case $1 in
	--http-port=*) port=${1#*=} ;;
	--http-port) port=${2:?--http-port needs a value}; shift ;;
	esac
	shift
done
if [ -z "${KC_BOOTSTRAP_ADMIN_PASSWORD:-}" ] && [ -z "${KEYCLOAK_ADMIN_PASSWORD:-}" ] &&
	[ -r /run/secrets/admin_password ]; then
	KC_BOOTSTRAP_ADMIN_PASSWORD=$(cat /run/secrets/admin_password)
	export KC_BOOTSTRAP_ADMIN_PASSWORD
fi
# shellcheck disable=SC2086 # KCSTUB_ARGS is a list of options
exec /usr/bin/python3.11 /opt/kcstub/kcstub.py --bind 0.0.0.0 --port "$port" ${KCSTUB_ARGS:-}
EOF
chmod 755 "$root/opt/keycloak/bin/kc.sh" "$root/opt/kcstub" "$root/opt/keycloak" "$root/opt/keycloak/bin"
chmod 644 "$root/opt/kcstub/kcstub.py"

# The tree must run on its own before it becomes an image.
if command -v chroot >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	chroot "$root" /usr/bin/python3.11 -I -B -c \
		'import ssl, json, hashlib, hmac, secrets, http.server, ipaddress; secrets.token_bytes(16)' ||
		{ say "python does not run in the assembled tree"; exit 1; }
	chroot "$root" /bin/sh -c 'cat /etc/passwd && ls /' >/dev/null ||
		{ say "busybox does not run in the assembled tree"; exit 1; }
fi

tar -C "$root" --numeric-owner -c . | "$docker" import \
	--change 'ENTRYPOINT ["/opt/keycloak/bin/kc.sh"]' \
	--change 'CMD ["start-dev"]' \
	--change 'EXPOSE 8080' \
	--change 'WORKDIR /opt/keycloak' \
	--change 'USER 1000' \
	--change 'ENV PATH=/opt/keycloak/bin:/usr/bin:/bin LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1' \
	--change 'LABEL org.opencontainers.image.title=kcstub org.opencontainers.image.description="Keycloak 26 stand-in for tests"' \
	- "$tag" >/dev/null
say "built $tag ($("$docker" image inspect -f '{{.Size}}' "$tag") bytes)"
