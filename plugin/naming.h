/* naming.h - run ids and the names derived from them.
 *
 * Pure functions, no I/O: the realm name, the cold service name, the warm
 * service name and the lease's job mark all come from here, so one rule
 * decides each name. Output buffers are caller-owned; every function
 * returns 0 or -1 (and then leaves no partial name). */
#ifndef DRONE_DEPS_NAMING_H
#define DRONE_DEPS_NAMING_H

#include <stdbool.h>
#include <stddef.h>

#define RUN_ID_LEN 6
#define PARENT_MAX 56 /* so that "<parent>-<runid>" stays within 63 */

/* Whether s is exactly six lowercase hex digits. */
bool naming_run_id_valid(const char *s);
/* The run id from a per-run domain such as "lasu-0a6fb2.example.org": the
 * six hex digits after the last '-' of the first label. */
int naming_run_id_from_domain(const char *domain, char out[RUN_ID_LEN + 1]);
/* Six hex digits of a 64-bit FNV-1a hash over the given parts, joined with
 * '\n' (so "a","bc" and "ab","c" differ). NULL parts count as "". */
void naming_run_id_hash(const char *const parts[], size_t n, char out[RUN_ID_LEN + 1]);
/* Whether s can be a parent: 1..PARENT_MAX of [a-z0-9-], starting and
 * ending with a letter or digit. */
bool naming_parent_valid(const char *s);
/* A repository name made into a parent: lowercased, '_' and '.' as '-'.
 * The result still has to pass naming_parent_valid. */
int naming_parent_from_repo(const char *repo, char *out, size_t outsz);
/* "<parent>-<runid>". */
int naming_realm(const char *parent, const char *run_id, char *out, size_t outsz);
/* Cold service and host label: "<dep[:4]>-<runid>", e.g. "keyc-0a6fb2". */
int naming_cold_service(const char *dep, const char *run_id, char *out, size_t outsz);
/* Co-op Cloud's stack naming: the domain with dots as '_', then "_app". */
int naming_stack_service(const char *domain, char *out, size_t outsz);
/* The host part of an http(s) URL ("https://a.b:8443/x" -> "a.b"). */
int naming_url_host(const char *url, char *out, size_t outsz);
/* Whether a realm name has the shape drone-deps gives realms:
 * "<parent>-<6 hex>". Used to pick reaping candidates cheaply. */
bool naming_realm_shape(const char *realm);
/* A spare realm of the pool: "<parent>-spare-<k>". Its last label is
 * decimal and short, never six hex digits: a spare and a run's realm can
 * never have the same name. */
#define SPARE_NAME_MAX (PARENT_MAX + 7 + 3)
int naming_spare(const char *parent, int k, char *out, size_t outsz);
/* The first labels of the warm instance's shared spares (pool.h): no
 * parent may have this name. */
#define POOL_INSTANCE "drone-deps-pool"
/* Whether a realm name has the shape of a spare: "<parent>-spare-<k>". */
bool naming_spare_shape(const char *realm);

#endif
