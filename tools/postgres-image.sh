#!/bin/sh
# A PostgreSQL image for the warm Keycloak's database (warm_db: postgres),
# built locally from Debian's packages: nothing is pulled from an image
# registry.
#
# Usage: tools/postgres-image.sh TAG
#   TAG  the name action warm asks for (WARM_DB_IMAGE_DEFAULT in
#        plugin/warm.h, or the warm_db_image setting)
#
#   a Debian bookworm root (debootstrap, minbase) with Debian's
#     postgresql-15; its root tarball is kept in the cache by recipe, so a
#     pruned or new daemon gets the image back in seconds
#   ENTRYPOINT /usr/local/bin/drone-deps-postgres (below): on an empty
#     data directory it runs initdb with the superuser POSTGRES_USER, whose
#     password it reads from the file POSTGRES_PASSWORD_FILE (a swarm
#     secret), creates the database POSTGRES_DB, and lets every address
#     in with scram-sha-256; then it runs postgres as the postgres user
#   /var/lib/postgresql/data     the data directory, owned by postgres, so
#                                a new volume mounted there takes its owner
#   port 5432 (the service spec stops it with SIGINT, PostgreSQL's fast
#   shutdown: docker import takes no STOPSIGNAL)
#
# An image that exists under TAG with the same recipe (label
# drone-deps.postgres-image) is left as it is.
#
# Environment: DRONE_DEPS_CACHE (default /var/cache/drone-deps),
# DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR, DOCKER (default docker).
set -eu

TAG=${1:?usage: postgres-image.sh TAG}
here=$(cd "$(dirname "$0")" && pwd)
DOCKER=${DOCKER:-docker}
CACHE=${DRONE_DEPS_CACHE:-/var/cache/drone-deps}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-$(SUITE=$SUITE "$here"/apt-mirror.sh archive)}
SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-$(SUITE=$SUITE "$here"/apt-mirror.sh security)}
PG_MAJOR=15
PACKAGES=postgresql-$PG_MAJOR
# The entrypoint. Runs as root only to own the data directory (a volume
# may come with another owner) and drops to postgres for everything else.
ENTRYPOINT='#!/bin/sh
set -eu
bin=/usr/lib/postgresql/'$PG_MAJOR'/bin
data=${PGDATA:-/var/lib/postgresql/data}
pwfile=${POSTGRES_PASSWORD_FILE:?POSTGRES_PASSWORD_FILE must name the password file}
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
as_pg() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
mkdir -p "$data" /run/postgresql
chown postgres:postgres "$data" /run/postgresql
chmod 700 "$data"
if [ ! -s "$data/PG_VERSION" ]; then
	[ -s "$pwfile" ] || { echo "drone-deps-postgres: $pwfile is empty or missing" >&2; exit 1; }
	# initdb into a fresh directory, moved into place only once complete:
	# a start killed halfway leaves no cluster that looks initialised
	rm -rf "$data/.init"
	as_pg mkdir -m 700 "$data/.init"
	# initdb reads the password from a file it can read; the secret may
	# be mounted for root only
	as_pg sh -c "umask 077 && cat >\"$data/.init.pw\"" <"$pwfile"
	as_pg "$bin/initdb" -D "$data/.init" -U "$user" --pwfile="$data/.init.pw" \
		-A scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
	rm -f "$data/.init.pw"
	printf "host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n" \
		>>"$data/.init/pg_hba.conf"
	printf "listen_addresses = '"'"'*'"'"'\n" >>"$data/.init/postgresql.conf"
	printf "CREATE DATABASE \"%s\";\n" "$db" |
		as_pg "$bin/postgres" --single -D "$data/.init" -j postgres >/dev/null
	for f in "$data/.init"/*; do mv "$f" "$data/"; done
	rmdir "$data/.init"
	echo "drone-deps-postgres: initialised $data (database $db, user $user)" >&2
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups "$bin/postgres" -D "$data"'
RECIPE="debootstrap $SUITE minbase $PACKAGES"

log() { printf 'postgres-image: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }
# shellcheck source=tools/debootstrap-root.sh
. "$here/debootstrap-root.sh"

work=
cleanup() { [ -z "$work" ] || rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

recipe=$(printf '%s\n' "$RECIPE" "$ENTRYPOINT" | cksum | cut -d' ' -f1)
have=$("$DOCKER" image inspect --format '{{index .Config.Labels "drone-deps.postgres-image"}}' \
	"$TAG" 2>/dev/null || true)
if [ "$have" = "$recipe" ]; then
	log "$TAG exists (recipe $recipe)"
	exit 0
fi
start=$(date +%s)
# The root is cached by its packages alone; the entrypoint is added to a
# copy at import, so changing it does not debootstrap again.
tarball=$CACHE/base-images/$SUITE-postgresql-$(echo "$RECIPE" | cksum | cut -d' ' -f1).tar
work=$(mktemp -d "${TMPDIR:-/tmp}/postgres-image.XXXXXX")
if [ ! -f "$tarball" ]; then
	mkdir -p "$CACHE/base-images"
	root=$work/root
	debootstrap_root "$root" "$PACKAGES" "$CACHE/base-images/debootstrap-postgresql.log"
	[ -x "$root/usr/lib/postgresql/$PG_MAJOR/bin/postgres" ] ||
		die "no postgres $PG_MAJOR in the debootstrap'ed root"
	# The package's own cluster and configuration are not used: the
	# entrypoint makes the cluster on the volume.
	rm -rf "$root/var/lib/postgresql/$PG_MAJOR" "$root/etc/postgresql/$PG_MAJOR"
	mkdir -p "$root/var/lib/postgresql/data"
	chroot "$root" chown postgres:postgres /var/lib/postgresql/data
	chmod 700 "$root/var/lib/postgresql/data"
	(cd "$root" && rm -rf var/cache/apt/archives/*.deb var/lib/apt/lists/* \
		var/log/* tmp/* proc/* sys/* dev/* usr/share/man/* usr/share/info/*)
	find "$root/usr/share/doc" -type f ! -name copyright -delete 2>/dev/null || true
	tar -C "$root" --numeric-owner -cf "$tarball.tmp" .
	mv "$tarball.tmp" "$tarball"
	rm -rf "$root"
fi
mkdir -p "$work/add/usr/local/bin"
printf '%s\n' "$ENTRYPOINT" >"$work/add/usr/local/bin/drone-deps-postgres"
chmod 755 "$work/add/usr/local/bin/drone-deps-postgres"
cp "$tarball" "$work/root.tar"
tar -C "$work/add" --numeric-owner --owner=0 --group=0 -rf "$work/root.tar" ./usr/local/bin/drone-deps-postgres
log "importing $TAG from $tarball"
"$DOCKER" import \
	--change "LABEL drone-deps.postgres-image=\"$recipe\"" \
	--change "LABEL org.opencontainers.image.title=postgresql" \
	--change "LABEL org.opencontainers.image.version=\"$PG_MAJOR\"" \
	--change 'ENV LANG=C.UTF-8 PGDATA=/var/lib/postgresql/data' \
	--change 'EXPOSE 5432' \
	--change 'ENTRYPOINT ["/usr/local/bin/drone-deps-postgres"]' \
	--message "Debian $SUITE minbase + $PACKAGES (debootstrap)" \
	"$work/root.tar" "$TAG" >/dev/null
log "made $TAG in $(($(date +%s) - start)) s, $("$DOCKER" image inspect -f '{{.Size}}' "$TAG") bytes"
