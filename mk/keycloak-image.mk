# A real Keycloak image for cold deploys, built locally (no registry) by
# tools/keycloak-image.sh and tagged as the default keycloak_image, so a
# cold deploy with default settings finds it on the node.
#
#   make keycloak-image   build it (seconds when its recipe has not changed)

KEYCLOAK_IMAGE ?= $(shell sed -n 's/^\#define KEYCLOAK_IMAGE_DEFAULT "\(.*\)"/\1/p' plugin/config.h)

.PHONY: keycloak-image

keycloak-image: docker-up
	tools/keycloak-image.sh $(KEYCLOAK_IMAGE)
