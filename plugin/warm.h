/* warm.h - action warm: declare and reconcile the warm Keycloak.
 *
 * warm_reconcile() makes the swarm hold the warm instance of `domain` as a
 * Co-op Cloud app would hold it, so every other action finds it by its
 * defaults: stack "warm-keycloak.<domain>" with dots as '_', service
 * "<stack>_app" labelled com.docker.stack.namespace=<stack>, the admin
 * password in the swarm secret "<stack>_admin_password" mounted at
 * /run/secrets/admin_password (generated once, never printed, never in
 * the spec), Keycloak's database on the volume "<stack>_data" with the
 * service pinned to this engine's node (the volume's), Traefik labels on
 * `network` or a host-mode port (warm_publish), a health check, a restart
 * policy and a memory limit.
 *
 * It is idempotent: the desired spec's hash rides on the service as a
 * label, so an unchanged spec changes nothing; a changed one (say
 * keycloak_image) rolls the service; a missing service, or one with no
 * live task, is deployed again with the same secret. With warm_ci_client
 * it then creates the least-privilege CI client (keycloak_client_id) and
 * says where its secret went, never the secret. */
#ifndef DRONE_DEPS_WARM_H
#define DRONE_DEPS_WARM_H

#include "deps.h"

#define WARM_LABEL "drone-deps.warm"	       /* value: warm-keycloak.<domain> */
#define WARM_SPEC_LABEL "drone-deps.warm.spec" /* value: hash of the desired spec */
#define WARM_MEMORY_LIMIT (2048LL << 20)
#define WARM_MEMORY_RESERVATION (512LL << 20)
/* Where start-dev keeps its H2 database (data/h2) and its other state; the
 * official image ships it empty, owned by the keycloak user, so a new
 * volume mounted there takes that owner. */
#define WARM_DATA_DIR "/opt/keycloak/data"

/* Runs action warm with d's Docker client. Returns an exit code: 0, 64 on
 * a bad domain (nothing created), 69 when the engine, the network, the
 * image or Keycloak is not there or not ready in time, 73 when the CI
 * client's secret file cannot be written, 128+N on a stop signal. */
int warm_reconcile(struct deps *d);

#endif
