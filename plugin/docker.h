/* docker.h - the Docker Engine API over its unix socket, through libcurl.
 *
 * One struct docker per run: one reused connection, the API version agreed
 * with the engine (GET /_ping's Api-Version, capped at DOCKER_API_MAX:
 * Docker 29.0-29.2 refuse versions below 1.44 and older engines refuse
 * newer ones, so neither a fixed old nor a fixed new version works), and
 * the engine's own message of the last failure in d->error. */
#ifndef DRONE_DEPS_DOCKER_H
#define DRONE_DEPS_DOCKER_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "http.h"

#define DOCKER_API_MAX "1.47"
#define DOCKER_API_MIN "1.25" /* services, secrets and exec as used here */

struct docker {
	struct http_client http;
	char version[16];      /* "1.41": agreed API version, "" before _ping */
	long long deadline_ms; /* bounds every call */
	char error[512];
};

/* Prepares a client for the socket (no request yet). 0 or -1. */
int docker_init(struct docker *d, const char *socket_path);
void docker_cleanup(struct docker *d);
/* GET /_ping; agrees on min(ours, the engine's) API version. 0 or -1. */
int docker_negotiate(struct docker *d);

/* One call to /v<version><path>. Returns the HTTP status (out gets the
 * body when not NULL), or -1 on a transport error. d->error is set for
 * every status >= 400, from the engine's {"message": ...}. */
long docker_call(struct docker *d, const char *method, const char *path, const char *body,
		 size_t len, struct buf *out);
/* The same with a body of another type (a tar archive, say). */
long docker_call_typed(struct docker *d, const char *method, const char *path,
		       const char *content_type, const char *body, size_t len, struct buf *out);

/* Splits an exec/attach stream (8-byte frame headers: stream, 0, 0, 0,
 * big-endian length) into stdout and stderr. Returns 0, or -1 when a frame
 * is truncated or of an unknown stream. */
int docker_demux(const char *in, size_t len, struct buf *out, struct buf *err);

/* Runs argv in a running container without a TTY and collects stdout.
 * Returns the exit code (0..255), or -1 (d->error set). */
int docker_exec(struct docker *d, const char *container, const char *const argv[], struct buf *out);

/* The id of a running container of a swarm service, into id. 0 or -1. */
int docker_service_container(struct docker *d, const char *service, char *id, size_t idsz);

/* A swarm task as its service's waits see it. */
struct docker_task {
	char state[32];	    /* "running", "failed", ...; "no task yet" */
	char desired[32];   /* its desired state: "running" or "shutdown" */
	char err[400];	    /* the engine's error, "" when none */
	char container[96]; /* its container's id, "" when none yet */
	long long force;    /* its spec's ForceUpdate: which update made it */
};

/* The newest task of a swarm service (highest version index), into t.
 * With live_first, the newest of those the swarm still wants running,
 * when there is one: a rolling update bumps the version of the task it
 * stops too. 0, or -1 (d->error). */
int docker_task_newest(struct docker *d, const char *service, bool live_first,
		       struct docker_task *t);

/* Creates the swarm secret name with data and labels (JSON members
 * without braces, "" for none). Returns 0 once created, with its id in id
 * ("" and d->error set when the answer had none), or -1 (d->error; a 409
 * when the name is taken). The request body holds the data: it is wiped
 * before it is freed. */
int docker_secret_create(struct docker *d, const char *name, const char *labels, const char *data,
			 size_t len, char *id, size_t idsz);

/* Percent-encodes s into out for a query string. */
int docker_query_escape(struct buf *out, const char *s);

/* Appends to a service spec the publication of the container's 8080 on
 * host port `port` in host mode (the routing mesh may be absent), as
 * ,"EndpointSpec":{...}. 0, or -1 when out of memory. */
int docker_spec_host_port(struct buf *spec, int port);

/* Appends to a service's labels the Traefik routing of https://host to the
 * container's 8080 (router and service named router, TLS by resolver,
 * through network), each as ,"key":"value". 0, or -1 when out of memory. */
int docker_spec_traefik_labels(struct buf *labels, const char *router, const char *host,
			       const char *network, const char *resolver);

#endif
