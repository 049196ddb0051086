# Traefik for the host suite (tests/host), included by the top-level Makefile.
#
#   make traefik   build Traefik v3 (pinned in tools/traefik/go.mod) from the
#                  Go module proxy, niced, and its local image on the BusyBox
#                  base (tools/traefik.sh); prints the image's tag
#
# The go command's caches and the binary live under
# /var/cache/drone-deps/traefik (DRONE_DEPS_CACHE), outside the clone: the
# first build downloads and compiles (many minutes on 2 cores), later ones
# only make the image, or nothing.

.PHONY: traefik

traefik: base-images
	BUSYBOX_BASE=$(BUSYBOX_BASE) tools/traefik.sh build

# In `make check` this build may fail (no Go, or the proxy does not answer)
# without stopping the other suites: the host suite then reports it.
