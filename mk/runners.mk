# Real CI runners for the runners suite, included by the top-level Makefile.
#
#   make runners   build Drone's `drone exec` (drone-cli, pinned in
#                  tools/runners/drone/go.mod) and, when the Go module proxy
#                  serves it, woodpecker-cli; tools/runners.sh says which
#
# The go command's caches and the binaries live under
# /var/cache/drone-deps/runners (DRONE_DEPS_CACHE), outside the clone: the
# first build downloads and compiles (minutes), later ones only link.

.PHONY: runners

runners:
	tools/runners.sh build

# In `make check` this build may fail (no Go, or the proxy does not answer)
# without stopping the other suites: the runners suite then reports it.
