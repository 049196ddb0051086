/* status.h - action status: what drone-deps holds right now.
 *
 * Lists every realm of the warm Keycloak that carries drone-deps' owner
 * mark, and every swarm service and secret with the owner label: name,
 * run, job, created, how long its lease has left (or since when it ended),
 * live or expired, then the counts. Text for people, or one JSON document
 * (setting json) for machines, on stdout. It only reads: nothing is
 * created, renewed or deleted, and no secret is printed. Each source is
 * read if it can be: without a Docker socket only realms are listed,
 * without a warm URL only services and secrets, and the output says so. */
#ifndef DRONE_DEPS_STATUS_H
#define DRONE_DEPS_STATUS_H

#include <stdbool.h>
#include <stdio.h>

#include "deps.h"

/* Exit code of status when everything could be read and something has an
 * expired lease (a scheduled pipeline can alert on it). Not used by any
 * other action: those exit with the hook's code or 64..75. A source that
 * could not be read (the warm instance refusing, say) exits 69 instead. */
#define STATUS_EXIT_EXPIRED 1
/* Exit code when nothing expired among what could be seen, but not all
 * could be: realms listed with the CI client are only those Keycloak
 * shows it (the realms it made); realms made with the admin password or
 * another client are not visible to it. Never 0 for a partial view. */
#define STATUS_EXIT_PARTIAL 3

/* Reads and prints; returns 0, STATUS_EXIT_EXPIRED, STATUS_EXIT_PARTIAL,
 * or an exit code (64 nothing to read from, 69 a source could not be
 * read, 70). */
int status_run(struct deps *d);

/* Renders server answers as status prints them, at time now, to out (text,
 * or JSON with json): the realm name with its answers (realm: GET
 * /admin/realms/{name}; users: its first-user list) and the owned items of
 * a Docker list answer. Any answer may be NULL. For the fuzzer: the same
 * code status_run reads and prints with. Returns 0 or -1. */
int status_render(const char *name, const char *realm, size_t realm_len, const char *users,
		  size_t users_len, const char *list, size_t list_len, long long now, bool json,
		  FILE *out);

#endif
