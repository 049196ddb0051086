# The plugin image, its local base images, and the Docker engine they need,
# included by the top-level Makefile (after VERSION and TLS are known).
#
#   make docker-up      reuse or start dockerd and a swarm (tools/docker-up.sh)
#   make docker-down    stop only what docker-up started
#   make base-images    local bases from Debian packages, no registry
#   make image          build $(IMAGE) from the Dockerfile on those bases
#   make static-test    tests/static/run.sh on $(STATIC_BIN)
#   make image-test     tests/image/run.sh on $(IMAGE), as Drone runs it
#   make sizes          stripped binary and image sizes (tools/sizes.sh)
#
# There is no image registry here: the build stage is a debootstrap'ed
# bookworm with the toolchain, the final stage a BusyBox root from Debian's
# busybox-static; both are passed to docker build as build arguments (the
# Dockerfile's defaults are the public debian:bookworm and busybox:musl).
# The build context carries the cached static prefix (see .dockerignore), so
# the build stage only compiles plugin/*.c; docker build containers do reach
# Debian's archive here, which the stage uses only when the prefix is absent.

_image_mk_default_goal := $(.DEFAULT_GOAL)

IMAGE ?= drone-deps:test
DOCKER ?= docker
DOCKER_STATE := build/docker
BUSYBOX_BASE ?= drone-deps-base/busybox:bookworm
BUILD_BASE ?= drone-deps-base/bookworm-build:1
# The image's source label: the clone's origin when it has an https one,
# else the project's home (CI passes its own repository link).
PROJECT_URL ?= https://git.coopcloud.tech/coop-cloud/drone-deps
IMAGE_SOURCE_URL ?= $(or $(filter https://%,$(shell git config --get remote.origin.url 2>/dev/null)),$(PROJECT_URL))
# The legacy builder: this Docker has no buildx, and needs none.
IMAGE_BUILD = DOCKER_BUILDKIT=0 $(DOCKER) build \
	--build-arg BUILD_IMAGE=$(BUILD_BASE) \
	--build-arg BASE_IMAGE=$(BUSYBOX_BASE) \
	--build-arg VERSION=$(VERSION) \
	--build-arg TLS=$(TLS) \
	--build-arg SOURCE_URL=$(IMAGE_SOURCE_URL)

.PHONY: docker-up docker-down base-images image static-test image-test sizes

docker-up:
	tools/docker-up.sh $(DOCKER_STATE)

docker-down:
	tools/docker-down.sh $(DOCKER_STATE)

base-images: docker-up
	tools/base-images.sh $(BUSYBOX_BASE) $(BUILD_BASE)

# static-deps first: the build context then carries the prefix.
image: base-images static-deps
	@mkdir -p build; start=$$(date +%s); \
	if $(IMAGE_BUILD) -t $(IMAGE) . >build/image-build.log 2>&1; then \
		echo "image: $(IMAGE) built in $$(( $$(date +%s) - start )) s (log: build/image-build.log)"; \
	else \
		tail -n 30 build/image-build.log >&2; exit 1; \
	fi

static-test: static
	tests/static/run.sh $(STATIC_BIN)

image-test: static image
	tests/image/run.sh $(IMAGE) $(STATIC_BIN)

sizes: static
	@tools/sizes.sh $(STATIC_BIN) $(IMAGE)

.DEFAULT_GOAL := $(_image_mk_default_goal)
