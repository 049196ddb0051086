# A real Keycloak image for cold deploys, built locally (no registry) by
# tools/keycloak-image.sh and tagged as the default keycloak_image, so a
# cold deploy with default settings finds it on the node.
#
#   make keycloak-image   build it (seconds when its recipe has not changed)
#   make cold-real        the cold path's main rules on it (test_cold_real.py)

KEYCLOAK_IMAGE ?= $(shell sed -n 's/^\#define KEYCLOAK_IMAGE_DEFAULT "\(.*\)"/\1/p' plugin/config.h)

COLD_REAL = python3 tests/e2e/test_cold_real.py

.PHONY: keycloak-image cold-real

keycloak-image: docker-up
	tools/keycloak-image.sh $(KEYCLOAK_IMAGE)

cold-real: static image keycloak-image
	DRONE_DEPS_BIN=$(STATIC_BIN) $(COLD_REAL)

# The warm instance on PostgreSQL (warm_db: postgres): Keycloak built for
# it (a second tag of the same version, production build) and the
# database's image from Debian's postgresql packages. Both cached.
KEYCLOAK_PG_IMAGE ?= $(KEYCLOAK_IMAGE)-postgres
WARM_DB_IMAGE ?= $(shell sed -n 's/^\#define WARM_DB_IMAGE_DEFAULT "\(.*\)"/\1/p' plugin/config.h)

.PHONY: warm-pg-images

warm-pg-images: docker-up
	KEYCLOAK_DB=postgres tools/keycloak-image.sh $(KEYCLOAK_PG_IMAGE)
	tools/postgres-image.sh $(WARM_DB_IMAGE)
