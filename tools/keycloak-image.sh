#!/bin/sh
# A real Keycloak image, built locally in the shape of the official one, for
# cold deploys in tests: nothing is pulled from an image registry.
#
# Usage: tools/keycloak-image.sh TAG
#   TAG  the name cold deploys ask for, e.g. quay.io/keycloak/keycloak:26.4.7
#        (the default keycloak_image), so the engine finds it locally
#
#   a Debian bookworm root (debootstrap, minbase) with Debian's
#     openjdk-17-jre-headless: its own base image, drone-deps-base/
#     bookworm-java:17, reused while its recipe (label drone-deps.base) holds;
#     its root tarball is kept in the cache, so a pruned base is re-imported
#     in seconds
#   /opt/keycloak                 keycloak-quarkus-dist (tools/keycloak.sh
#                                 fetch downloads and verifies it once)
#   ENTRYPOINT ["/opt/keycloak/bin/kc.sh"], user 1000 (keycloak, group 0),
#   /opt/keycloak owned by 1000:0 and group-writable, ports 8080 8443 9000,
#   as the official image has them
#
# The image is augmented for what cold deploys run, `kc.sh start-dev` with
# the fixed build options in conf/keycloak.conf (db=dev-file,
# health-enabled=true), so a container start skips Quarkus' re-augmentation.
# `kc.sh build` cannot do that: it refuses the dev profile ("You can not
# 'build' the server in development mode") and a production build is
# re-augmented by every start-dev. So the image build runs start-dev's own
# first phase, which augments and exits 10 (kc.sh would then relaunch the
# server), and stops there.
#
# An image that exists under TAG with the same recipe (label
# drone-deps.keycloak-image) is left as it is. The augmented tree is kept in
# the cache too (CACHE/keycloak/keycloak-VERSION-start-dev-SUM.tar), so with
# a warm cache a new daemon gets the image back without augmenting.
#
# With KEYCLOAK_DB=postgres the image is a production build instead, for
# the warm instance on PostgreSQL: `kc.sh build` with db=postgres and
# health-enabled=true in conf/keycloak.conf, so `kc.sh start --optimized`
# starts it without augmenting (cache=ispn, Keycloak 26's clustering, is
# the production default). Its tag names the version with a suffix, e.g.
# quay.io/keycloak/keycloak:26.4.7-postgres.
#
# Environment: KEYCLOAK_DB (dev-file, the default, or postgres),
# KEYCLOAK_VERSION (default: the one tools/keycloak.sh pins),
# DRONE_DEPS_CACHE (default /var/cache/drone-deps), DEBIAN_MIRROR,
# DEBIAN_SECURITY_MIRROR, DOCKER (default docker).
set -eu

TAG=${1:?usage: keycloak-image.sh TAG}
here=$(cd "$(dirname "$0")" && pwd)
DOCKER=${DOCKER:-docker}
CACHE=${DRONE_DEPS_CACHE:-/var/cache/drone-deps}
SUITE=bookworm
# The mirrors this machine's apt already uses, unless overridden.
MIRROR=${DEBIAN_MIRROR:-$(SUITE=$SUITE "$here"/apt-mirror.sh archive)}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-$(SUITE=$SUITE "$here"/apt-mirror.sh security)}
JAVA_PACKAGES=openjdk-17-jre-headless
JAVA_TAG=drone-deps-base/$SUITE-java:17
JAVA_RECIPE="debootstrap $SUITE minbase $JAVA_PACKAGES"
# Build options: the same in the build and at every start, or start-dev
# re-augments. dev-file is start-dev's own default (the official image's):
# an H2 file under data/h2, which the warm instance keeps on a volume.
KEYCLOAK_DB=${KEYCLOAK_DB:-dev-file}
case $KEYCLOAK_DB in
dev-file)
	KC_CONF='db=dev-file
health-enabled=true'
	PROFILE=dev
	AUGMENTED_AS=start-dev
	PERSISTED_CHECK=kc.profile=dev
	;;
postgres)
	# a production build: start --optimized takes these as they are
	KC_CONF='db=postgres
health-enabled=true'
	PROFILE=prod
	AUGMENTED_AS=postgres
	PERSISTED_CHECK=kc.db=postgres
	;;
*)
	echo "keycloak-image: KEYCLOAK_DB must be dev-file or postgres (got '$KEYCLOAK_DB')" >&2
	exit 2
	;;
esac
# start-dev's first phase augments and exits 10; kc.sh then relaunches the
# same java with -Dkc.config.built=true to start the server: this stand-in
# for java stops there.
AUGMENT_JAVA='#!/bin/sh
case " $* " in
*" -Dkc.config.built=true "*) exit 0 ;;
esac
exec java "$@"'
# The image: the augmented tree on the Java base, laid out as the official
# image is.
DOCKERFILE='ARG JAVA_IMAGE
FROM ${JAVA_IMAGE}
# data/ comes empty, the keycloak user'"'"'s and group-writable, as in the
# official image: a new volume mounted there takes its owner.
COPY --chown=1000:0 keycloak /opt/keycloak
RUN echo "keycloak:x:1000:0:keycloak user:/opt/keycloak:/sbin/nologin" >>/etc/passwd
ENV LANG=C.UTF-8 KC_RUN_IN_CONTAINER=true
USER 1000
EXPOSE 8080 8443 9000
ENTRYPOINT ["/opt/keycloak/bin/kc.sh"]'

log() { printf 'keycloak-image: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=tools/debootstrap-root.sh
. "$here/debootstrap-root.sh"

label_of() {
	"$DOCKER" image inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true
}

# The build options an augmented tree carries.
persisted() {
	python3 -c 'import sys, zipfile
print(zipfile.ZipFile(sys.argv[1]).read("META-INF/keycloak-persisted.properties").decode())' \
		"$1/lib/quarkus/generated-bytecode.jar" 2>/dev/null
}

work=
cleanup() { [ -z "$work" ] || rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The Java root: debootstrap once, the tarball cached by recipe.
make_java_base() {
	tarball=$CACHE/base-images/$SUITE-java-$(echo "$JAVA_RECIPE" | cksum | cut -d' ' -f1).tar
	if [ ! -f "$tarball" ]; then
		mkdir -p "$CACHE/base-images"
		root=$work/root
		debootstrap_root "$root" "$JAVA_PACKAGES" "$CACHE/base-images/debootstrap-java.log"
		"$root/usr/lib/jvm/java-17-openjdk-amd64/bin/java" -version >/dev/null 2>&1 ||
			chroot "$root" java -version >/dev/null 2>&1 ||
			die "java does not run in the debootstrap'ed root"
		# Manuals and docs are not needed to run; copyright files stay.
		(cd "$root" && rm -rf var/cache/apt/archives/*.deb var/lib/apt/lists/* \
			var/log/* tmp/* proc/* sys/* dev/* usr/share/man/* usr/share/info/*)
		find "$root/usr/share/doc" -type f ! -name copyright -delete 2>/dev/null || true
		tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
		mv "$tarball.tmp" "$tarball"
		rm -rf "$root"
	fi
	log "importing $JAVA_TAG from $tarball"
	"$DOCKER" import --change "LABEL drone-deps.base=\"$JAVA_RECIPE\"" \
		--change 'ENV LANG=C.UTF-8' \
		--message "Debian $SUITE minbase + $JAVA_PACKAGES (debootstrap)" \
		"$tarball" "$JAVA_TAG" >/dev/null
}

# The distribution, verified by tools/keycloak.sh.
home=$("$here/keycloak.sh" fetch)
version=${home##*/keycloak-}
dist=$CACHE/keycloak/keycloak-quarkus-dist-$version.tar.gz
[ -f "$dist" ] || die "$dist is missing (tools/keycloak.sh fetch keeps it)"
dist_sum=$(sha256sum "$dist" | cut -d' ' -f1)

# A tag that names a version must name this one.
case $TAG in
*:[0-9]*)
	v=${TAG##*:}
	[ "${v%%-*}" = "$version" ] || die "$TAG names another version than the distribution's ($version)"
	;;
esac

# Everything the image is made of; a change makes a new image.
recipe=$(printf '%s\n' "$JAVA_RECIPE" "$dist_sum" "$KC_CONF" "$AUGMENT_JAVA" "$DOCKERFILE" |
	cksum | cut -d' ' -f1)
if [ "$(label_of "$TAG" drone-deps.keycloak-image)" = "$recipe" ]; then
	log "$TAG exists (recipe $recipe)"
	exit 0
fi

# The image this one replaces, removed once it has no tag left.
old=$("$DOCKER" image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
start=$(date +%s)
mkdir -p "$CACHE"
work=$(mktemp -d "${TMPDIR:-/tmp}/keycloak-image.XXXXXX")
if [ "$(label_of "$JAVA_TAG" drone-deps.base)" = "$JAVA_RECIPE" ]; then
	log "$JAVA_TAG exists"
else
	make_java_base
fi

ctx=$work/ctx
mkdir -p "$ctx/keycloak"
# The augmented tree is kept in the cache by what makes it, so a pruned or
# new daemon gets the image back without augmenting again.
augmented=$CACHE/keycloak/keycloak-$version-$AUGMENTED_AS-$(printf '%s\n' "$JAVA_RECIPE" \
	"$dist_sum" "$KC_CONF" "$AUGMENT_JAVA" | cksum | cut -d' ' -f1).tar
if [ -f "$augmented" ]; then
	log "augmented Keycloak $version from $augmented"
	tar -xf "$augmented" -C "$ctx/keycloak"
else
	tar -xzf "$dist" -C "$ctx/keycloak" --strip-components=1
	printf '\n# drone-deps: build options, fixed so start-dev skips re-augmentation\n%s\n' \
		"$KC_CONF" >>"$ctx/keycloak/conf/keycloak.conf"
	printf '%s\n' "$AUGMENT_JAVA" >"$ctx/augment-java"
	chmod 755 "$ctx/augment-java"
	if [ "$PROFILE" = dev ]; then
		run='exec bin/kc.sh start-dev'
	else
		run='exec bin/kc.sh build'
	fi
	log "augmenting Keycloak $version for ${run#exec bin/kc.sh } ($(echo "$KC_CONF" | tr '\n' ' ' | sed 's/ *$//'))"
	name=drone-deps-keycloak-augment-$$
	# As root in a throw-away container on the Java base, on the
	# bind-mounted tree: one layer in the image, no build stage left.
	if ! "$DOCKER" run --rm --name "$name" --network none \
		-v "$ctx:/ctx" -e JAVA=/ctx/augment-java "$JAVA_TAG" \
		sh -c "cd /ctx/keycloak && $run >/ctx/augment.log 2>&1" ||
		! persisted "$ctx/keycloak" | grep -qx "$PERSISTED_CHECK"; then
		"$DOCKER" rm -f "$name" >/dev/null 2>&1 || true
		tail -n 20 "$ctx/augment.log" >&2 || true
		die "augmentation failed"
	fi
	log "persisted build options: $(persisted "$ctx/keycloak" | grep -v '^#' | tr '\n' ' ' | sed 's/ *$//')"
	rm -f "$ctx/augment-java" "$ctx/augment.log"
	# A start leaves data/ behind; the image starts without one.
	rm -rf "$ctx/keycloak/data"
	chmod -R g+rwX,o-w "$ctx/keycloak"
	tar -C "$ctx/keycloak" --numeric-owner -cf "$augmented.tmp" .
	mv "$augmented.tmp" "$augmented"
fi

mkdir -p "$ctx/keycloak/data"
chmod 775 "$ctx/keycloak/data"
printf '%s\n' "$DOCKERFILE" >"$ctx/Dockerfile"
log "building $TAG"
DOCKER_BUILDKIT=0 "$DOCKER" build -q --force-rm \
	--build-arg JAVA_IMAGE="$JAVA_TAG" \
	--label drone-deps.keycloak-image="$recipe" \
	--label org.opencontainers.image.title=keycloak \
	--label org.opencontainers.image.version="$version" \
	--label org.opencontainers.image.description="Keycloak $version (keycloak-quarkus-dist) on Debian $SUITE with $JAVA_PACKAGES, built for $KEYCLOAK_DB" \
	-t "$TAG" "$ctx" >"$work/build.log" 2>&1 || {
	tail -n 30 "$work/build.log" >&2
	die "docker build failed"
}
log "built $TAG in $(($(date +%s) - start)) s, $("$DOCKER" image inspect -f '{{.Size}}' "$TAG") bytes"
if [ -n "$old" ] && [ -z "$("$DOCKER" image inspect --format '{{join .RepoTags " "}}' "$old" 2>/dev/null)" ]; then
	"$DOCKER" rmi "$old" >/dev/null 2>&1 || true
fi
