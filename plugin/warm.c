/* warm.c - action warm: deploy or repair the warm Keycloak; see warm.h. */
#include "warm.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include "cold.h"
#include "json.h"
#include "keycloak.h"
#include "log.h"
#include "random.h"
#include "signals.h"

#define POLL_MS 1000
#define ENGINE_GRACE_MS 5000
#define CI_CLIENT_MS 60000
/* The swarm's limits: a service name is a DNS label (63), a secret name
 * at most 64 characters. */
#define SERVICE_NAME_MAX 63
#define SECRET_NAME_MAX 64
#define CI_SECRET_LEN 40
/* The first line of every warm_ci_secret_file drone-deps writes, the
 * client's id after it; the secret is the second and last line. A file
 * in any other shape (empty, cut short, a bare secret someone put there)
 * is not drone-deps' and its content is never adopted as a secret. */
#define CI_SECRET_MARK "# drone-deps warm_ci_secret_file: the next line is the secret of client "

struct warm {
	char host[256];		  /* warm-keycloak.<domain> */
	char stack[256];	  /* host, dots as '_' */
	char service[256];	  /* <stack>_app */
	char secret_name[256];	  /* <stack>_admin_password */
	char ci_secret_name[256]; /* <stack>_ci_client_secret */
	char volume[256];	  /* <stack>_data: Keycloak's database */
	char node_id[96];	  /* the node the instance and its volume are on */
	char secret_id[96];
	char password[256]; /* the admin password, when this run knows it */
	const char *image;
	const char *network;
	/* warm_db postgres: the database service next to Keycloak */
	char db_service[256];	  /* <stack>_db */
	char db_volume[256];	  /* <stack>_db: PostgreSQL's data */
	char db_secret_name[256]; /* <stack>_db_password */
	char db_secret_id[96];
	char internal[256]; /* <stack>_internal: Keycloak and its database */
	const char *db_image;
};

/* One swarm service of the instance, as the reconcile handles it: Keycloak
 * (<stack>_app) or, with warm_db postgres, its database (<stack>_db). */
struct warm_svc {
	const char *name;
	const char *image;
	const char *what; /* for the progress lines: "Keycloak", "PostgreSQL" */
	int replicas;
	int (*spec)(struct buf *b, const struct warm *w, const struct config *cfg, const char *hash,
		    long long force);
};

static int warm_fail_name(const char *domain, const char *what, const char *name, size_t max)
{
	log_error(
		"domain: '%s' makes the %s '%s' %zu characters long; the swarm allows at most %zu: use a shorter domain",
		domain, what, name, strlen(name), max);
	return EX_USAGE;
}

/* Derives the names and checks them against the swarm's rules. Returns 0
 * or EX_USAGE (logged): nothing has been asked of the engine yet. */
static int warm_names(struct warm *w, const struct config *cfg)
{
	const char *domain = cfg->value[SET_DOMAIN], *label = domain, *p, *cid;
	size_t i;

	/* DNS names as Traefik and the swarm take them: dot-separated labels
	 * of [a-z0-9-], 1 to 63 long, not starting or ending with '-' */
	for (p = domain;; p++) {
		if (*p == '.' || !*p) {
			if (p == label || p - label > 63 || *label == '-' || p[-1] == '-')
				break;
			if (!*p) {
				p = NULL;
				break;
			}
			label = p + 1;
		} else if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) &&
			   *p != '-') {
			break;
		}
	}
	if (p || strlen(domain) > 200) {
		log_error(
			"domain: '%s' is not a domain name: use dot-separated labels of a-z, 0-9 and '-' (lowercase), e.g. ci.example.org",
			domain);
		return EX_USAGE;
	}
	snprintf(w->host, sizeof(w->host), "warm-keycloak.%s", domain);
	for (i = 0; w->host[i]; i++)
		w->stack[i] = (char)(w->host[i] == '.' ? '_' : w->host[i]);
	w->stack[i] = '\0';
	snprintf(w->service, sizeof(w->service), "%s_app", w->stack);
	snprintf(w->secret_name, sizeof(w->secret_name), "%s_admin_password", w->stack);
	/* One client per group of repositories (keycloak_client_id): each
	 * gets a swarm secret of its own, so a second client never replaces
	 * the first one's. The default client keeps its original name. */
	cid = cfg->value[SET_KEYCLOAK_CLIENT_ID];
	if (cid && strcmp(cid, KEYCLOAK_CLIENT_ID_DEFAULT) != 0) {
		if (strspn(cid,
			   "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") !=
			    strlen(cid) &&
		    cfg->warm_ci_client && !cfg->value[SET_WARM_CI_SECRET_FILE]) {
			log_error(
				"keycloak_client_id: '%s' cannot name a swarm secret (use letters, digits, '-', '_', '.'), or set warm_ci_secret_file",
				cid);
			return EX_USAGE;
		}
		snprintf(w->ci_secret_name, sizeof(w->ci_secret_name), "%s_ci_%s_secret", w->stack,
			 cid);
	} else {
		snprintf(w->ci_secret_name, sizeof(w->ci_secret_name), "%s_ci_client_secret",
			 w->stack);
	}
	snprintf(w->volume, sizeof(w->volume), "%s_data", w->stack);
	if (strlen(w->service) > SERVICE_NAME_MAX)
		return warm_fail_name(domain, "service name", w->service, SERVICE_NAME_MAX);
	if (strlen(w->secret_name) > SECRET_NAME_MAX)
		return warm_fail_name(domain, "secret name", w->secret_name, SECRET_NAME_MAX);
	if (cfg->warm_ci_client && !cfg->value[SET_WARM_CI_SECRET_FILE] &&
	    strlen(w->ci_secret_name) > SECRET_NAME_MAX)
		return warm_fail_name(domain, "secret name", w->ci_secret_name, SECRET_NAME_MAX);
	w->image = cfg->value[SET_KEYCLOAK_IMAGE] ? cfg->value[SET_KEYCLOAK_IMAGE]
						  : KEYCLOAK_IMAGE_DEFAULT;
	w->network = cfg->value[SET_NETWORK] ? cfg->value[SET_NETWORK] : "proxy";
	return 0;
}

/* The swarm node of this engine: the instance is pinned to it, as its
 * database lives in a volume of that node. 0 or EX_UNAVAILABLE (logged). */
static int warm_node(struct docker *d, struct warm *w)
{
	struct buf resp = BUF_INIT;
	struct json j = { 0 };
	int rc = EX_UNAVAILABLE;

	if (docker_call(d, "GET", "/info", NULL, 0, &resp) != 200 ||
	    json_parse(&j, buf_str(&resp), resp.len) < 0) {
		log_error("docker_host: cannot ask the engine for its swarm node: %s", d->error);
		goto out_free;
	}
	if (json_get_string(&j, json_object_get(&j, 0, "Swarm"), "NodeID", w->node_id,
			    sizeof(w->node_id)) <= 0) {
		log_error(
			"docker_host: this Docker engine is not in a swarm: run docker swarm init (or join it to the swarm) first");
		goto out_free;
	}
	rc = 0;
out_free:
	json_free(&j);
	buf_free(&resp);
	return rc;
}

/* What the deploy needs from the node, checked before anything is made:
 * its swarm node, the image (the swarm would only report a rejected task,
 * over and over) and the proxy network. Returns 0 or EX_UNAVAILABLE
 * (logged). */
static int warm_check_node(struct docker *d, struct warm *w, const struct config *cfg)
{
	char path[640];
	long status;

	if (warm_node(d, w))
		return EX_UNAVAILABLE;
	snprintf(path, sizeof(path), "/images/%s/json", w->image);
	status = docker_call(d, "GET", path, NULL, 0, NULL);
	if (status == 404) {
		log_error(
			"keycloak_image: %s is not on this Docker engine, and drone-deps never pulls from a registry: pull, load or build it on the node first, or set keycloak_image to an image that is there",
			w->image);
		return EX_UNAVAILABLE;
	}
	if (status != 200) {
		log_error("keycloak_image: cannot look up %s: %s", w->image, d->error);
		return EX_UNAVAILABLE;
	}
	if (cfg->warm_publish)
		return 0;
	snprintf(path, sizeof(path), "/networks/%s", w->network);
	status = docker_call(d, "GET", path, NULL, 0, NULL);
	if (status == 404) {
		log_error(
			"network: there is no swarm network '%s' for Traefik to reach warm-keycloak on: create it (docker network create --driver overlay --attachable %s), or set warm_publish to a host port for a site without a proxy",
			w->network, w->network);
		return EX_UNAVAILABLE;
	}
	if (status != 200) {
		log_error("network: cannot look up '%s': %s", w->network, d->error);
		return EX_UNAVAILABLE;
	}
	return 0;
}

/* A service of the warm name that drone-deps did not make (an instance
 * deployed by hand or by abra) is left alone: warm manages only its own.
 * 0, or EX_UNAVAILABLE (logged). Checked before anything is made. */
static int warm_check_owner(struct docker *d, const char *service)
{
	struct buf resp = BUF_INIT;
	struct json j = { 0 };
	char path[320], host[256];
	long status;
	int rc = EX_UNAVAILABLE;

	snprintf(path, sizeof(path), "/services/%s", service);
	status = docker_call(d, "GET", path, NULL, 0, &resp);
	if (status != 404 && (status != 200 || json_parse(&j, buf_str(&resp), resp.len) < 0))
		log_error("service %s: %s", service, d->error);
	else if (status == 404 ||
		 json_get_string(&j, json_object_get(&j, json_object_get(&j, 0, "Spec"), "Labels"),
				 WARM_LABEL, host, sizeof(host)) > 0)
		rc = 0;
	else
		log_error(
			"service %s exists and was not made by action warm (no " WARM_LABEL
			" label): leaving it alone; runs can use it as it is, or remove it (docker service rm %s) to let warm manage it",
			service, service);
	json_free(&j);
	buf_free(&resp);
	return rc;
}

/* A password's swarm secret name (what: "admin password", "database
 * password", for the log): reused when it exists (a redeploy must not
 * change a password under what reads it), else made with a fresh random
 * password, which is then in password (PASSWORD_LEN + 1 bytes; left empty
 * when the secret was reused) and masked in logs. The secret's id goes to
 * id. 0 or EX_UNAVAILABLE (logged). */
static int warm_password_secret(struct docker *d, const struct warm *w, const char *name,
				const char *what, char *id, size_t idsz, char *password)
{
	struct buf resp = BUF_INIT, labels = BUF_INIT;
	struct json j = { 0 };
	char path[320];
	long status;
	int rc = EX_UNAVAILABLE;

	password[0] = '\0';
	snprintf(path, sizeof(path), "/secrets/%s", name);
	status = docker_call(d, "GET", path, NULL, 0, &resp);
	if (status == 200) {
		if (json_parse(&j, buf_str(&resp), resp.len) < 0 ||
		    json_get_string(&j, 0, "ID", id, idsz) <= 0) {
			log_error("secret %s: no ID in the engine's answer", name);
			goto out_free;
		}
		log_info("%s: reusing the swarm secret %s", what, name);
		rc = 0;
		goto out_free;
	}
	if (status != 404) {
		log_error("secret %s: %s", name, d->error);
		goto out_free;
	}
	if (random_alnum(password, PASSWORD_LEN) < 0) {
		log_error("no randomness for the %s", what);
		goto out_free;
	}
	log_secret_add(password);
	buf_printf(&labels, "\"com.docker.stack.namespace\":\"%s\",\"" WARM_LABEL "\":\"%s\"",
		   w->stack, w->host);
	if (docker_secret_create(d, name, buf_str(&labels), password, strlen(password), id, idsz) <
		    0 ||
	    !id[0]) {
		log_error("secret %s: %s", name, d->error);
		goto out_free;
	}
	log_info("%s: generated into the swarm secret %s (never printed)", what, name);
	rc = 0;
out_free:
	json_free(&j);
	buf_free(&resp);
	buf_free(&labels);
	return rc;
}

/* The admin password's secret; a fresh password is then in w->password,
 * which this run uses to make the CI client. */
static int warm_secret(struct docker *d, struct warm *w)
{
	return warm_password_secret(d, w, w->secret_name, "admin password", w->secret_id,
				    sizeof(w->secret_id), w->password);
}

/* The health check: Keycloak's readiness on its management port. Neither
 * image has curl or wget; bash's /dev/tcp does the request. */
static const char health_script[] =
	"exec 3<>/dev/tcp/127.0.0.1/9000 && "
	"printf 'GET /health/ready HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && "
	"grep -q '\"UP\"' <&3";

/* The end of a task template's ContainerSpec that Keycloak's and the
 * database's service share: one password secret mounted as file, the data
 * volume at target (labelled as the stack's), and the placement on this
 * node, where that volume lives. Appends to b; nonzero on out of memory. */
static int warm_spec_data(struct buf *b, const struct warm *w, const char *file,
			  const char *secret_id, const char *secret_name, const char *volume,
			  const char *target)
{
	int rc = 0;

	rc |= buf_printf(b,
			 "\"Secrets\":[{\"File\":{\"Name\":\"%s\","
			 "\"UID\":\"0\",\"GID\":\"0\",\"Mode\":292},\"SecretID\":",
			 file);
	rc |= buf_json_string(b, secret_id);
	rc |= buf_puts(b, ",\"SecretName\":");
	rc |= buf_json_string(b, secret_name);
	rc |= buf_puts(b, "}],\"Mounts\":[{\"Type\":\"volume\",\"Source\":");
	rc |= buf_json_string(b, volume);
	rc |= buf_printf(b,
			 ",\"Target\":\"%s\",\"VolumeOptions\":{\"Labels\":"
			 "{\"com.docker.stack.namespace\":\"%s\"}}}]},"
			 "\"Placement\":{\"Constraints\":[\"node.id==%s\"]}",
			 target, w->stack, w->node_id);
	return rc;
}

/* The service's spec. hash NULL: without the hash label (what the hash is
 * taken of); force: TaskTemplate.ForceUpdate, which makes the swarm
 * replace the task even with an unchanged spec. */
static int warm_spec(struct buf *b, const struct warm *w, const struct config *cfg,
		     const char *hash, long long force)
{
	const char *s = w->stack;
	char label[512];
	int rc = 0;

	rc |= buf_puts(b, "{\"Name\":");
	rc |= buf_json_string(b, w->service);
	rc |= buf_printf(b, ",\"Labels\":{\"com.docker.stack.namespace\":\"%s\"", s);
	rc |= buf_puts(b, ",\"com.docker.stack.image\":");
	rc |= buf_json_string(b, w->image);
	rc |= buf_printf(b, ",\"" WARM_LABEL "\":\"%s\"", w->host);
	if (!cfg->warm_publish) {
		/* Co-op Cloud's router and service names: the stack name */
		rc |= docker_spec_traefik_labels(b, s, w->host, w->network,
						 cfg->value[SET_CERT_RESOLVER]
							 ? cfg->value[SET_CERT_RESOLVER]
							 : "production");
	}
	if (hash)
		rc |= buf_printf(b, ",\"" WARM_SPEC_LABEL "\":\"%s\"", hash);
	rc |= buf_puts(b, "},\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":");
	rc |= buf_json_string(b, w->image);
	rc |= buf_printf(b, ",\"Labels\":{\"com.docker.stack.namespace\":\"%s\"},", s);
	rc |= cold_keycloak_command(b);
	rc |= buf_puts(b, ",\"Env\":[");
	snprintf(label, sizeof(label), "KC_BOOTSTRAP_ADMIN_USERNAME=%s",
		 cfg->value[SET_KEYCLOAK_ADMIN_USER]);
	rc |= buf_json_string(b, label);
	snprintf(label, sizeof(label), "KEYCLOAK_ADMIN=%s", cfg->value[SET_KEYCLOAK_ADMIN_USER]);
	rc |= buf_puts(b, ",");
	rc |= buf_json_string(b, label);
	snprintf(label, sizeof(label), "KC_HOSTNAME=%s", cfg->keycloak_url);
	/* KC_DB: start-dev's default, said so that an image built with
	 * another database re-augments rather than keep nothing on the volume */
	rc |= buf_puts(b, ",\"KC_PROXY_HEADERS=xforwarded\",\"KC_HTTP_ENABLED=true\","
			  "\"KC_HEALTH_ENABLED=true\",\"KC_DB=dev-file\",");
	rc |= buf_json_string(b, label);
	/* Health: every 5 s; failures in the first 5 minutes (a start on a
	 * loaded node) do not count. The swarm calls the task running only
	 * once it is healthy. */
	rc |= buf_puts(b, "],\"Healthcheck\":{\"Test\":[\"CMD\",\"bash\",\"-c\",");
	rc |= buf_json_string(b, health_script);
	rc |= buf_puts(b, "],\"Interval\":5000000000,\"Timeout\":3000000000,\"Retries\":3,"
			  "\"StartPeriod\":300000000000},");
	/* start-dev keeps its H2 database under data/: on a volume, the
	 * realms and the CI client outlive a restarted or replaced task */
	rc |= warm_spec_data(b, w, COLD_SECRET_FILE, w->secret_id, w->secret_name, w->volume,
			     WARM_DATA_DIR);
	rc |= buf_printf(b,
			 ",\"Resources\":{\"Limits\":{\"MemoryBytes\":%lld},"
			 "\"Reservations\":{\"MemoryBytes\":%lld}}",
			 WARM_MEMORY_LIMIT, WARM_MEMORY_RESERVATION);
	/* Infrastructure: back after any exit, a node reboot included. */
	rc |= buf_puts(b, ",\"RestartPolicy\":{\"Condition\":\"any\",\"Delay\":5000000000}");
	if (force)
		rc |= buf_printf(b, ",\"ForceUpdate\":%lld", force);
	if (!cfg->warm_publish) {
		rc |= buf_puts(b, ",\"Networks\":[{\"Target\":");
		rc |= buf_json_string(b, w->network);
		rc |= buf_puts(b, "}]");
	}
	/* stop-first: a host-mode port cannot be held by two tasks */
	rc |= buf_puts(b, "},\"Mode\":{\"Replicated\":{\"Replicas\":1}},"
			  "\"UpdateConfig\":{\"Parallelism\":1,\"Order\":\"stop-first\"}");
	if (cfg->warm_publish)
		rc |= docker_spec_host_port(b, cfg->warm_publish);
	rc |= buf_puts(b, "}");
	return rc ? -1 : 0;
}

/* ---- warm_db postgres: Keycloak in production mode on PostgreSQL ---- */

#define WARM_DB_NAME "keycloak" /* PostgreSQL's user and database */
#define WARM_DB_SECRET_FILE "db_password"
#define WARM_DB_DATA_DIR "/var/lib/postgresql/data"
/* Keycloak's data/ holds nothing of value with an external database: no
 * volume, so the tasks are free to move */

/* The names of the database's objects, beside warm_names'. 0 or
 * EX_USAGE (logged). */
static int warm_pg_names(struct warm *w, const struct config *cfg)
{
	snprintf(w->db_service, sizeof(w->db_service), "%s_db", w->stack);
	snprintf(w->db_volume, sizeof(w->db_volume), "%s_db", w->stack);
	snprintf(w->db_secret_name, sizeof(w->db_secret_name), "%s_db_password", w->stack);
	snprintf(w->internal, sizeof(w->internal), "%s_internal", w->stack);
	if (strlen(w->db_secret_name) > SECRET_NAME_MAX)
		return warm_fail_name(cfg->value[SET_DOMAIN], "secret name", w->db_secret_name,
				      SECRET_NAME_MAX);
	if (strlen(w->internal) > SERVICE_NAME_MAX)
		return warm_fail_name(cfg->value[SET_DOMAIN], "network name", w->internal,
				      SERVICE_NAME_MAX);
	/* the default Keycloak image is the start-dev one: PostgreSQL needs
	 * the production build of the same version */
	if (!cfg->value[SET_KEYCLOAK_IMAGE])
		w->image = KEYCLOAK_IMAGE_POSTGRES_DEFAULT;
	w->db_image = cfg->value[SET_WARM_DB_IMAGE] ? cfg->value[SET_WARM_DB_IMAGE]
						    : WARM_DB_IMAGE_DEFAULT;
	return 0;
}

/* The database's image is on the node (nothing is pulled). 0 or
 * EX_UNAVAILABLE (logged). */
static int warm_pg_check_image(struct docker *d, const struct warm *w)
{
	char path[640];
	long status;

	snprintf(path, sizeof(path), "/images/%s/json", w->db_image);
	status = docker_call(d, "GET", path, NULL, 0, NULL);
	if (status == 200)
		return 0;
	if (status == 404)
		log_error(
			"warm_db_image: %s is not on this Docker engine, and drone-deps never pulls from a registry: build it on the node first (tools/postgres-image.sh %s), or set warm_db_image to an image that is there",
			w->db_image, w->db_image);
	else
		log_error("warm_db_image: cannot look up %s: %s", w->db_image, d->error);
	return EX_UNAVAILABLE;
}

/* The database's password: a swarm secret made once with a random value
 * that nobody reads but PostgreSQL's first start and Keycloak, reused ever
 * after (the cluster on the volume keeps the password it was made with).
 * 0 or EX_UNAVAILABLE (logged). */
static int warm_pg_secret(struct docker *d, struct warm *w)
{
	char password[PASSWORD_LEN + 1];
	int rc = warm_password_secret(d, w, w->db_secret_name, "database password", w->db_secret_id,
				      sizeof(w->db_secret_id), password);

	/* nobody in this run needs it: PostgreSQL and Keycloak read the secret */
	explicit_bzero(password, sizeof(password));
	return rc;
}

/* The stack's internal overlay network, on which Keycloak reaches its
 * database and its peers: made once, labelled as the stack's. 0 or
 * EX_UNAVAILABLE (logged). */
static int warm_pg_network(struct docker *d, const struct warm *w)
{
	struct buf body = BUF_INIT;
	char path[320];
	long status;
	int rc = EX_UNAVAILABLE;

	snprintf(path, sizeof(path), "/networks/%s", w->internal);
	status = docker_call(d, "GET", path, NULL, 0, NULL);
	if (status == 200)
		return 0;
	if (status != 404) {
		log_error("network %s: %s", w->internal, d->error);
		return EX_UNAVAILABLE;
	}
	buf_puts(&body, "{\"Name\":");
	buf_json_string(&body, w->internal);
	buf_printf(&body,
		   ",\"Driver\":\"overlay\",\"CheckDuplicate\":true,\"Labels\":{"
		   "\"com.docker.stack.namespace\":\"%s\",\"" WARM_LABEL "\":\"%s\"}}",
		   w->stack, w->host);
	if (docker_call(d, "POST", "/networks/create", body.data, body.len, NULL) != 201) {
		log_error("network %s: %s", w->internal, d->error);
		goto out_free;
	}
	log_info("network %s created (Keycloak and its database)", w->internal);
	rc = 0;
out_free:
	buf_free(&body);
	return rc;
}

/* The database service: PostgreSQL's official image interface
 * (POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD_FILE, data in
 * /var/lib/postgresql/data), which tools/postgres-image.sh's image keeps.
 * Pinned to this node, as its volume is; reached by name on the internal
 * network (DNS round robin: the machine may have no IPVS for a VIP). */
static int warm_pg_db_spec(struct buf *b, const struct warm *w, const struct config *cfg,
			   const char *hash, long long force)
{
	const char *s = w->stack;
	int rc = 0;

	(void)cfg;
	rc |= buf_puts(b, "{\"Name\":");
	rc |= buf_json_string(b, w->db_service);
	rc |= buf_printf(b, ",\"Labels\":{\"com.docker.stack.namespace\":\"%s\"", s);
	rc |= buf_puts(b, ",\"com.docker.stack.image\":");
	rc |= buf_json_string(b, w->db_image);
	rc |= buf_printf(b, ",\"" WARM_LABEL "\":\"%s\"", w->host);
	if (hash)
		rc |= buf_printf(b, ",\"" WARM_SPEC_LABEL "\":\"%s\"", hash);
	rc |= buf_puts(b, "},\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":");
	rc |= buf_json_string(b, w->db_image);
	rc |= buf_printf(b, ",\"Labels\":{\"com.docker.stack.namespace\":\"%s\"},", s);
	rc |= buf_puts(b, "\"Env\":[\"POSTGRES_USER=" WARM_DB_NAME "\",\"POSTGRES_DB=" WARM_DB_NAME
			  "\",\"POSTGRES_PASSWORD_FILE=/run/secrets/" WARM_DB_SECRET_FILE "\","
			  "\"PGDATA=" WARM_DB_DATA_DIR "\"],"
			  /* PostgreSQL's fast shutdown, and the time to finish it */
			  "\"StopSignal\":\"SIGINT\",\"StopGracePeriod\":30000000000,"
			  "\"Healthcheck\":{\"Test\":[\"CMD\",\"pg_isready\",\"-q\",\"-h\","
			  "\"127.0.0.1\",\"-U\",\"" WARM_DB_NAME "\",\"-d\",\"" WARM_DB_NAME "\"],"
			  "\"Interval\":5000000000,\"Timeout\":3000000000,\"Retries\":3,"
			  "\"StartPeriod\":120000000000},");
	rc |= warm_spec_data(b, w, WARM_DB_SECRET_FILE, w->db_secret_id, w->db_secret_name,
			     w->db_volume, WARM_DB_DATA_DIR);
	rc |= buf_puts(b, ",\"RestartPolicy\":{\"Condition\":\"any\",\"Delay\":5000000000}");
	if (force)
		rc |= buf_printf(b, ",\"ForceUpdate\":%lld", force);
	rc |= buf_puts(b, ",\"Networks\":[{\"Target\":");
	rc |= buf_json_string(b, w->internal);
	rc |= buf_puts(b, "}]},\"Mode\":{\"Replicated\":{\"Replicas\":1}},"
			  "\"UpdateConfig\":{\"Parallelism\":1,\"Order\":\"stop-first\"},"
			  "\"EndpointSpec\":{\"Mode\":\"dnsrr\"}}");
	return rc ? -1 : 0;
}

/* Keycloak's settings for serving behind Traefik, in one place: TLS ends
 * at the proxy, which talks plain HTTP to port 8080 and says the client's
 * scheme and host in X-Forwarded-*; the public URL is keycloak_url
 * (https://warm-keycloak.<domain> unless set). As JSON strings of Env. */
static int warm_pg_proxy_env(struct buf *b, const struct config *cfg)
{
	char v[600];
	int rc = 0;

	rc |= buf_puts(b, "\"KC_HTTP_ENABLED=true\",\"KC_PROXY_HEADERS=xforwarded\",");
	snprintf(v, sizeof(v), "KC_HOSTNAME=%s", cfg->keycloak_url);
	rc |= buf_json_string(b, v);
	return rc;
}

/* Keycloak's command with PostgreSQL: both passwords from the secret
 * files into the variables Keycloak reads, so neither sits in the spec;
 * the cluster's transport bound to the address of this task that its
 * peers share (one of those the swarm's DNS gives for tasks.<service>,
 * not the gateway bridge's), then the production server, already built
 * for postgres. */
static int warm_pg_command(struct buf *b, const struct warm *w)
{
	struct buf cmd = BUF_INIT;
	int rc = 0;

	rc |= buf_puts(
		&cmd, "p=$(cat /run/secrets/" COLD_SECRET_FILE ") && "
		      "export KC_BOOTSTRAP_ADMIN_PASSWORD=\"$p\" KEYCLOAK_ADMIN_PASSWORD=\"$p\" && "
		      "p=$(cat /run/secrets/" WARM_DB_SECRET_FILE ") && "
		      "export KC_DB_PASSWORD=\"$p\" && unset p && "
		      "for i in 1 2 3 4 5 6 7 8 9 10; do "
		      "t=\" \"$(getent ahostsv4 tasks.");
	rc |= buf_puts(&cmd, w->service);
	rc |= buf_puts(
		&cmd,
		" | cut -d' ' -f1 | sort -u | tr '\\n' ' '); "
		"for a in $(hostname -I); do case \"$t\" in "
		"*\" $a \"*) export KC_CACHE_EMBEDDED_NETWORK_BIND_ADDRESS=$a;; esac; done; "
		"[ -n \"${KC_CACHE_EMBEDDED_NETWORK_BIND_ADDRESS:-}\" ] && break; sleep 1; done; "
		"exec /opt/keycloak/bin/kc.sh start --optimized");
	rc |= buf_puts(b, "\"Command\":[\"/bin/sh\",\"-c\",");
	rc |= buf_json_string(b, buf_str(&cmd));
	rc |= buf_puts(b, "]");
	buf_free(&cmd);
	return rc ? -1 : 0;
}

/* Keycloak's service with PostgreSQL: warm_spec's shape without the H2
 * volume, on the internal network (and Traefik's), warm_replicas tasks
 * clustered by Keycloak 26's default cache stack (jdbc-ping: the members
 * find each other through a table of the database). */
static int warm_pg_spec(struct buf *b, const struct warm *w, const struct config *cfg,
			const char *hash, long long force)
{
	const char *s = w->stack;
	char v[512];
	int rc = 0;

	rc |= buf_puts(b, "{\"Name\":");
	rc |= buf_json_string(b, w->service);
	rc |= buf_printf(b, ",\"Labels\":{\"com.docker.stack.namespace\":\"%s\"", s);
	rc |= buf_puts(b, ",\"com.docker.stack.image\":");
	rc |= buf_json_string(b, w->image);
	rc |= buf_printf(b, ",\"" WARM_LABEL "\":\"%s\"", w->host);
	if (!cfg->warm_publish)
		rc |= docker_spec_traefik_labels(b, s, w->host, w->network,
						 cfg->value[SET_CERT_RESOLVER]
							 ? cfg->value[SET_CERT_RESOLVER]
							 : "production");
	if (hash)
		rc |= buf_printf(b, ",\"" WARM_SPEC_LABEL "\":\"%s\"", hash);
	rc |= buf_puts(b, "},\"TaskTemplate\":{\"ContainerSpec\":{\"Image\":");
	rc |= buf_json_string(b, w->image);
	rc |= buf_printf(b, ",\"Labels\":{\"com.docker.stack.namespace\":\"%s\"},", s);
	rc |= warm_pg_command(b, w);
	rc |= buf_puts(b, ",\"Env\":[");
	snprintf(v, sizeof(v), "KC_BOOTSTRAP_ADMIN_USERNAME=%s",
		 cfg->value[SET_KEYCLOAK_ADMIN_USER]);
	rc |= buf_json_string(b, v);
	snprintf(v, sizeof(v), "KEYCLOAK_ADMIN=%s", cfg->value[SET_KEYCLOAK_ADMIN_USER]);
	rc |= buf_puts(b, ",");
	rc |= buf_json_string(b, v);
	rc |= buf_puts(b, ",\"KC_DB=postgres\",\"KC_DB_URL_DATABASE=" WARM_DB_NAME
			  "\",\"KC_DB_USERNAME=" WARM_DB_NAME "\",");
	snprintf(v, sizeof(v), "KC_DB_URL_HOST=%s", w->db_service);
	rc |= buf_json_string(b, v);
	rc |= buf_puts(b, ",\"KC_HEALTH_ENABLED=true\",\"KC_CACHE=ispn\","
			  "\"KC_CACHE_STACK=jdbc-ping\",");
	rc |= warm_pg_proxy_env(b, cfg);
	rc |= buf_puts(b, "],\"Healthcheck\":{\"Test\":[\"CMD\",\"bash\",\"-c\",");
	rc |= buf_json_string(b, health_script);
	rc |= buf_puts(b, "],\"Interval\":5000000000,\"Timeout\":3000000000,\"Retries\":3,"
			  "\"StartPeriod\":300000000000},"
			  "\"Secrets\":[{\"File\":{\"Name\":\"" COLD_SECRET_FILE "\","
			  "\"UID\":\"0\",\"GID\":\"0\",\"Mode\":292},\"SecretID\":");
	rc |= buf_json_string(b, w->secret_id);
	rc |= buf_puts(b, ",\"SecretName\":");
	rc |= buf_json_string(b, w->secret_name);
	rc |= buf_puts(b, "},{\"File\":{\"Name\":\"" WARM_DB_SECRET_FILE "\","
			  "\"UID\":\"0\",\"GID\":\"0\",\"Mode\":292},\"SecretID\":");
	rc |= buf_json_string(b, w->db_secret_id);
	rc |= buf_puts(b, ",\"SecretName\":");
	rc |= buf_json_string(b, w->db_secret_name);
	/* on this node, as runs read the admin password from a container of
	 * the service through this engine */
	rc |= buf_printf(b, "}]},\"Placement\":{\"Constraints\":[\"node.id==%s\"]}", w->node_id);
	rc |= buf_printf(b,
			 ",\"Resources\":{\"Limits\":{\"MemoryBytes\":%lld},"
			 "\"Reservations\":{\"MemoryBytes\":%lld}}",
			 WARM_MEMORY_LIMIT, WARM_MEMORY_RESERVATION);
	rc |= buf_puts(b, ",\"RestartPolicy\":{\"Condition\":\"any\",\"Delay\":5000000000}");
	if (force)
		rc |= buf_printf(b, ",\"ForceUpdate\":%lld", force);
	rc |= buf_puts(b, ",\"Networks\":[{\"Target\":");
	rc |= buf_json_string(b, w->internal);
	rc |= buf_puts(b, "}");
	if (!cfg->warm_publish) {
		rc |= buf_puts(b, ",{\"Target\":");
		rc |= buf_json_string(b, w->network);
		rc |= buf_puts(b, "}");
	}
	/* stop-first, one at a time: with several tasks the others serve
	 * meanwhile; a host-mode port cannot be held by two tasks */
	rc |= buf_printf(b,
			 "]},\"Mode\":{\"Replicated\":{\"Replicas\":%d}},"
			 "\"UpdateConfig\":{\"Parallelism\":1,\"Order\":\"stop-first\"}",
			 cfg->warm_replicas > 0 ? cfg->warm_replicas : 1);
	if (cfg->warm_publish)
		rc |= docker_spec_host_port(b, cfg->warm_publish);
	rc |= buf_puts(b, "}");
	return rc ? -1 : 0;
}

/* 64-bit FNV-1a of the desired spec, as 16 hex digits: what the hash
 * label compares, so any change of image, settings or secret shows. */
static void warm_hash(const struct buf *spec, char out[17])
{
	unsigned long long h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < spec->len; i++) {
		h ^= (unsigned char)spec->data[i];
		h *= 0x100000001b3ULL;
	}
	snprintf(out, 17, "%016llx", h);
}

/* What the engine holds of the service now. */
struct warm_current {
	long long version;
	long long force;
	char hash[32];
	char image[512];
};

/* GET /services/{name}: 0 and cur filled, 1 when there is none, or -1. */
static int warm_service_get(struct docker *d, const char *service, struct warm_current *cur)
{
	struct buf resp = BUF_INIT;
	struct json j = { 0 };
	char path[320];
	long status;
	int spec, tt, rc = -1;

	memset(cur, 0, sizeof(*cur));
	snprintf(path, sizeof(path), "/services/%s", service);
	status = docker_call(d, "GET", path, NULL, 0, &resp);
	if (status == 404) {
		rc = 1;
		goto out_free;
	}
	if (status != 200 || json_parse(&j, buf_str(&resp), resp.len) < 0)
		goto out_free;
	spec = json_object_get(&j, 0, "Spec");
	tt = json_object_get(&j, spec, "TaskTemplate");
	if (json_get_long(&j, json_object_get(&j, 0, "Version"), "Index", &cur->version) < 0) {
		snprintf(d->error, sizeof(d->error), "service %s: no version index", service);
		goto out_free;
	}
	(void)json_get_long(&j, tt, "ForceUpdate", &cur->force);
	(void)json_get_string(&j, json_object_get(&j, spec, "Labels"), WARM_SPEC_LABEL, cur->hash,
			      sizeof(cur->hash));
	(void)json_get_string(&j, json_object_get(&j, tt, "ContainerSpec"), "Image", cur->image,
			      sizeof(cur->image));
	rc = 0;
out_free:
	json_free(&j);
	buf_free(&resp);
	return rc;
}

/* States in which a task will not become healthy by itself. */
static bool task_is_dead(const char *state)
{
	static const char *const dead[] = { "failed",	"rejected", "shutdown",	  "complete",
					    "orphaned", "remove",   "no task yet" };
	size_t i;

	for (i = 0; i < sizeof(dead) / sizeof(dead[0]); i++)
		if (!strcmp(state, dead[i]))
			return true;
	return false;
}

/* The line a first deploy of svc logs: where its data goes. */
static void warm_log_deploy(const struct warm *w, const struct config *cfg,
			    const struct warm_svc *svc)
{
	if (!strcmp(svc->name, w->db_service))
		log_info("deploying service %s (%s) for %s; its data on volume %s, node %s",
			 svc->name, svc->image, w->host, w->db_volume, w->node_id);
	else if (cfg->warm_postgres)
		log_info("deploying service %s (%s) for %s: %d task%s; its database is service %s",
			 svc->name, svc->image, w->host, svc->replicas,
			 svc->replicas == 1 ? "" : "s", w->db_service);
	else
		log_info("deploying service %s (%s) for %s; its database on volume %s, node %s",
			 svc->name, svc->image, w->host, w->volume, w->node_id);
}

/* Creates, updates (rolls) or repairs the service, or says that nothing
 * changed. Every update raises ForceUpdate, so the tasks it makes are
 * known by it (*force): the old task runs on for a moment after the
 * update call, and must not pass for the new one. 0 or EX_UNAVAILABLE
 * (logged). */
static int warm_service_apply(struct docker *d, struct warm *w, const struct config *cfg,
			      const struct warm_svc *svc, long long *force)
{
	struct buf spec = BUF_INIT, path = BUF_INIT;
	struct warm_current cur;
	struct docker_task t;
	char hash[17];
	long status;
	int got, rc = EX_UNAVAILABLE;

	*force = 0;
	if (svc->spec(&spec, w, cfg, NULL, 0) < 0) {
		log_error("service spec: out of memory");
		rc = EX_SOFTWARE;
		goto out_free;
	}
	warm_hash(&spec, hash);
	got = warm_service_get(d, svc->name, &cur);
	if (got < 0) {
		log_error("service %s: %s", svc->name, d->error);
		goto out_free;
	}
	if (got == 1) {
		warm_log_deploy(w, cfg, svc);
	} else if (strcmp(cur.hash, hash) != 0) {
		if (strcmp(cur.image, svc->image) != 0)
			log_info("updating service %s: image %s -> %s", svc->name, cur.image,
				 svc->image);
		else
			log_info("updating service %s: its spec differs from the settings",
				 svc->name);
		*force = cur.force + 1;
	} else {
		if (docker_task_newest(d, svc->name, true, &t) < 0) {
			log_error("service %s: %s", svc->name, d->error);
			goto out_free;
		}
		*force = cur.force;
		/* no task the swarm wants running (scaled to 0, say), or one
		 * that will not come back by itself: redeploy */
		if (!strcmp(t.desired, "running") && !task_is_dead(t.state)) {
			log_info("%s is up to date: nothing changed (service %s, image %s)",
				 svc->what, svc->name, svc->image);
			rc = 0;
			goto out_free;
		}
		log_info("service %s has no live task (newest task %s%s%s): redeploying it",
			 svc->name, t.state, t.err[0] ? ": " : "", t.err);
		*force = cur.force + 1;
	}
	buf_reset(&spec);
	if (svc->spec(&spec, w, cfg, hash, *force) < 0) {
		log_error("service spec: out of memory");
		rc = EX_SOFTWARE;
		goto out_free;
	}
	if (got == 1) {
		status = docker_call(d, "POST", "/services/create", spec.data, spec.len, NULL);
		if (status != 201) {
			log_error("service %s: %s", svc->name, d->error);
			goto out_free;
		}
	} else {
		/* the version index makes a concurrent change fail, not vanish */
		buf_printf(&path, "/services/%s/update?version=%lld", svc->name, cur.version);
		status = docker_call(d, "POST", path.data, spec.data, spec.len, NULL);
		if (status != 200) {
			log_error("service %s: %s", svc->name, d->error);
			goto out_free;
		}
	}
	rc = 0;
out_free:
	buf_free(&spec);
	buf_free(&path);
	return rc;
}

/* The health status of a container ("starting", "healthy", ...), or a
 * word saying why there is none. */
static void warm_container_health(struct docker *d, const char *id, char *out, size_t outsz)
{
	struct buf resp = BUF_INIT;
	struct json j = { 0 };
	char path[160];
	long status;

	snprintf(out, outsz, "not started");
	if (!id[0])
		return;
	snprintf(path, sizeof(path), "/containers/%s/json", id);
	status = docker_call(d, "GET", path, NULL, 0, &resp);
	if (status == 404)
		snprintf(out, outsz, "unknown (container on another node)");
	else if (status != 200 || json_parse(&j, buf_str(&resp), resp.len) < 0 ||
		 json_get_string(&j, json_object_get(&j, json_object_get(&j, 0, "State"), "Health"),
				 "Status", out, outsz) < 0)
		snprintf(out, outsz, "unknown");
	json_free(&j);
	buf_free(&resp);
}

/* The tasks of svc the swarm wants running: how many there are and how
 * many of update force run with a healthy container; in t, one that is not
 * ready (the newest task when all are). 0 or -1 (d->error). */
static int warm_tasks_ready(struct docker *d, const struct warm_svc *svc, long long force,
			    int *ready, struct docker_task *t)
{
	struct buf path = BUF_INIT, resp = BUF_INIT, filter = BUF_INIT;
	struct json j = { 0 };
	struct json_iter it;
	int task, rc = -1;

	*ready = 0;
	if (svc->replicas == 1) {
		/* one task: the newest live one says it all */
		if (docker_task_newest(d, svc->name, true, t) < 0)
			return -1;
		goto out_one;
	}
	buf_puts(&filter, "{\"service\":[");
	buf_json_string(&filter, svc->name);
	buf_puts(&filter, "],\"desired-state\":[\"running\"]}");
	buf_puts(&path, "/tasks?filters=");
	if (docker_query_escape(&path, buf_str(&filter)) < 0 ||
	    docker_call(d, "GET", path.data, NULL, 0, &resp) != 200 ||
	    json_parse(&j, buf_str(&resp), resp.len) < 0)
		goto out_free;
	memset(t, 0, sizeof(*t));
	snprintf(t->state, sizeof(t->state), "no task yet");
	/* one pass, as every list of drone-deps is read (json.h) */
	json_iter_init(&it, &j, 0);
	for (task = json_iter_next(&it); task >= 0; task = json_iter_next(&it)) {
		int st = json_object_get(&j, task, "Status");
		struct docker_task one = { .force = 0 };
		char health[64];

		snprintf(one.desired, sizeof(one.desired), "running");
		if (json_get_string(&j, st, "State", one.state, sizeof(one.state)) < 0)
			snprintf(one.state, sizeof(one.state), "unknown");
		(void)json_get_string(&j, st, "Err", one.err, sizeof(one.err));
		(void)json_get_string(&j, json_object_get(&j, st, "ContainerStatus"), "ContainerID",
				      one.container, sizeof(one.container));
		(void)json_get_long(&j, json_object_get(&j, task, "Spec"), "ForceUpdate",
				    &one.force);
		warm_container_health(d, one.container, health, sizeof(health));
		if (one.force == force && !strcmp(one.state, "running") &&
		    (!strcmp(health, "healthy") || !strncmp(health, "unknown", 7)))
			(*ready)++;
		else if (!t->container[0] || strcmp(t->state, "no task yet") == 0)
			*t = one;
	}
	rc = 0;
	goto out_free;
out_one:
	rc = 0;
	if (t->force != force && strcmp(t->state, "no task yet") != 0) {
		/* the task the update replaces: not the one awaited */
		snprintf(t->state, sizeof(t->state), "%s", "being replaced");
		t->container[0] = '\0';
	} else if (!strcmp(t->state, "running")) {
		char health[64];

		warm_container_health(d, t->container, health, sizeof(health));
		if (!strcmp(health, "healthy") || !strncmp(health, "unknown", 7))
			*ready = 1;
	}
out_free:
	json_free(&j);
	buf_free(&path);
	buf_free(&resp);
	buf_free(&filter);
	return rc;
}

/* Waits until svc's replicas tasks of update force run and their
 * containers are healthy, one line per change. 0, EX_UNAVAILABLE, or
 * 128+N on a stop. */
static int warm_wait_ready(struct docker *d, const struct warm_svc *svc, const struct config *cfg,
			   long long force, long long deadline_ms)
{
	long long start = http_now_ms();
	char health[64] = "", last[512] = "", now_seen[512];
	struct docker_task t;
	int ready;

	/* The engine's answers may end a little past the deadline: the wait
	 * itself, not a cut call, should say what it waited for. */
	d->deadline_ms = deadline_ms + ENGINE_GRACE_MS;
	for (;;) {
		long long now = http_now_ms();
		int stop = signals_poll_stop();

		if (stop)
			return 128 + stop;
		if (warm_tasks_ready(d, svc, force, &ready, &t) < 0) {
			log_error("service %s: %s", svc->name, d->error);
			return EX_UNAVAILABLE;
		}
		if (ready >= svc->replicas) {
			if (svc->replicas > 1)
				log_info("%s is ready (service %s, %d tasks healthy after %lld s)",
					 svc->what, svc->name, ready, (now - start) / 1000);
			else
				log_info("%s is ready (service %s, healthy after %lld s)",
					 svc->what, svc->name, (now - start) / 1000);
			return 0;
		}
		warm_container_health(d, t.container, health, sizeof(health));
		if (!strcmp(t.state, "rejected")) {
			log_error("the task of service %s was rejected: %s", svc->name,
				  t.err[0] ? t.err : "no reason given");
			return EX_UNAVAILABLE;
		}
		if (now >= deadline_ms) {
			log_error(
				"%s was not healthy within the timeout (%ld s): task %s, health %s%s%s; see docker service ps %s and docker service logs %s",
				svc->what, cfg->timeout, t.state, health, t.err[0] ? ": " : "",
				t.err, svc->name, svc->name);
			return EX_UNAVAILABLE;
		}
		if (svc->replicas > 1)
			snprintf(now_seen, sizeof(now_seen),
				 "%d of %d tasks ready; task %s, health %s%s%s", ready,
				 svc->replicas,
				 strcmp(t.state, "no task yet") ? t.state : "not scheduled yet",
				 health, t.err[0] ? ", last error: " : "", t.err);
		else
			snprintf(now_seen, sizeof(now_seen), "task %s, health %s%s%s",
				 strcmp(t.state, "no task yet") ? t.state : "not scheduled yet",
				 health, t.err[0] ? ", last error: " : "", t.err);
		if (strcmp(now_seen, last) != 0) {
			log_info("waiting for %s to be healthy (service %s): %s, %lld s", svc->what,
				 svc->name, now_seen, (now - start) / 1000);
			snprintf(last, sizeof(last), "%s", now_seen);
		}
		http_sleep_ms(POLL_MS);
	}
}

/* The admin password of an instance whose secret existed before this
 * run: a secret's value cannot be read through the API, so read the file
 * the running container mounts, as runs do. 0 or EX_UNAVAILABLE. */
static int warm_read_password(struct docker *d, struct warm *w)
{
	static const char *const cat[] = { "cat", "/run/secrets/" COLD_SECRET_FILE, NULL };
	struct buf out = BUF_INIT;
	char id[128];
	int code, rc = EX_UNAVAILABLE;

	if (docker_service_container(d, w->service, id, sizeof(id)) < 0) {
		log_error("cannot read the admin password: %s", d->error);
		goto out_free;
	}
	code = docker_exec(d, id, cat, &out);
	while (out.len > 0 && (out.data[out.len - 1] == '\n' || out.data[out.len - 1] == '\r'))
		out.data[--out.len] = '\0';
	if (code != 0 || out.len == 0 || out.len >= sizeof(w->password)) {
		log_error("cannot read /run/secrets/" COLD_SECRET_FILE " in service %s: %s",
			  w->service, code < 0 ? d->error : "the command failed or gave nothing");
		goto out_free;
	}
	memcpy(w->password, out.data, out.len + 1);
	log_secret_add(w->password);
	rc = 0;
out_free:
	buf_free_secret(&out);
	return rc;
}

/* One admin call of the CI client's set-up: KC_OK when Keycloak answers
 * ok (kc->error says what went wrong otherwise). Only reads are retried:
 * a create sent twice would meet itself (409). */
static int warm_admin(struct keycloak *kc, const char *method, const char *path, const char *body,
		      long ok, struct buf *out)
{
	return keycloak_call(kc, "CI client", method, path, body, body ? strlen(body) : 0,
			     strcmp(method, "GET") == 0, ok, out);
}

/* The string member key of the first object of a JSON array (or of the
 * object itself). 0 or -1. */
static int first_string(const struct buf *b, const char *key, char *out, size_t outsz)
{
	struct json j = { 0 };
	int rc = -1;

	if (json_parse(&j, buf_str(b), b->len) == 0) {
		int obj = json_is_object(&j, 0) ? 0 : json_array_get(&j, 0, 0);

		if (obj >= 0 && json_get_string(&j, obj, key, out, outsz) > 0)
			rc = 0;
	}
	json_free(&j);
	return rc;
}

/* The secret in warm_ci_secret_file, when drone-deps wrote the file for
 * client_id: what Drone holds, so a client lost with its instance's data
 * is made again with it and Drone's copy stays good. 0, or -1 when there
 * is no file or it is not one of ours (out ""): empty, cut short, another
 * client's, or a bare secret drone-deps did not write. A swarm secret's
 * value cannot be read back through the API. */
static int warm_ci_secret_read(const char *file, const char *client_id, char *out, size_t outsz)
{
	char text[512], mark[320];
	size_t i, m;
	ssize_t n = -1;
	int fd;

	out[0] = '\0';
	if (outsz < CI_SECRET_LEN + 1)
		return -1;
	fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, text, sizeof(text) - 1);
		close(fd);
	}
	if (n <= 0)
		goto out_none;
	text[n] = '\0';
	m = (size_t)snprintf(mark, sizeof(mark), "%s%s\n", CI_SECRET_MARK, client_id);
	/* exactly: the mark line, CI_SECRET_LEN letters and digits, '\n' */
	if (m >= sizeof(mark) || (size_t)n != m + CI_SECRET_LEN + 1 || memcmp(text, mark, m) != 0 ||
	    text[n - 1] != '\n')
		goto out_none;
	for (i = m; i < m + CI_SECRET_LEN; i++)
		if (!isalnum((unsigned char)text[i]))
			goto out_none;
	memcpy(out, text + m, CI_SECRET_LEN);
	out[CI_SECRET_LEN] = '\0';
	explicit_bzero(text, sizeof(text));
	return 0;
out_none:
	explicit_bzero(text, sizeof(text));
	return -1;
}

/* Whether the CI client's secret already sits where it goes: the swarm
 * secret exists, or the file is one drone-deps wrote for this client,
 * holding secret (the client's current one). */
static bool warm_ci_secret_exists(struct docker *d, const struct warm *w, const char *file,
				  const char *client_id, const char *secret)
{
	char path[320];

	if (file) {
		char held[CI_SECRET_LEN + 2];
		bool same;

		if (warm_ci_secret_read(file, client_id, held, sizeof(held)) < 0)
			return false;
		same = strcmp(held, secret) == 0;
		explicit_bzero(held, sizeof(held));
		return same;
	}
	snprintf(path, sizeof(path), "/secrets/%s", w->ci_secret_name);
	return docker_call(d, "GET", path, NULL, 0, NULL) == 200;
}

/* Writes the file whole or not at all: a temporary file of mode 0600 in
 * the same directory, written and synced, then renamed over the file (and
 * the directory synced): a crash or a full disk leaves the old file or
 * the new one, never a part. 0, or -1 with errno. */
static int warm_ci_secret_write_file(const char *file, const char *client_id, const char *secret)
{
	char tmp[4096], dir[4096];
	const char *slash = strrchr(file, '/');
	struct buf text = BUF_INIT;
	int fd = -1, rc = -1, saved;

	/* beside the file, named for it: "<file>.drone-deps-XXXXXX" */
	if (snprintf(tmp, sizeof(tmp), "%s.drone-deps-XXXXXX", file) >= (int)sizeof(tmp) ||
	    snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - file + 1) : 1,
		     slash ? file : ".") >= (int)sizeof(dir)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (buf_printf(&text, "%s%s\n%s\n", CI_SECRET_MARK, client_id, secret) < 0) {
		errno = ENOMEM;
		goto out_free;
	}
	fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0)
		goto out_free;
	if (fchmod(fd, 0600) < 0 || write(fd, text.data, text.len) != (ssize_t)text.len ||
	    fsync(fd) < 0)
		goto out_unlink;
	if (close(fd) < 0) {
		fd = -1;
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, file) < 0)
		goto out_unlink;
	/* the rename itself made durable */
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0)
		(void)fsync(fd);
	rc = 0;
	goto out_free;
out_unlink:
	saved = errno;
	(void)unlink(tmp);
	errno = saved;
out_free:
	saved = errno;
	if (fd >= 0)
		close(fd);
	buf_free_secret(&text);
	errno = saved;
	return rc;
}

/* Puts the CI client's secret where it goes: a file drone-deps writes
 * (see CI_SECRET_MARK), or the swarm secret (replaced: a secret's value
 * cannot change in place). 0, or an exit code (logged). */
static int warm_ci_secret_store(struct docker *d, const struct warm *w, const char *file,
				const char *client_id, const char *secret)
{
	struct buf labels = BUF_INIT;
	char path[320], id[96];
	int rc = EX_UNAVAILABLE;
	size_t n = strlen(secret);
	long status;

	if (file) {
		if (warm_ci_secret_write_file(file, client_id, secret) < 0) {
			log_error("warm_ci_secret_file: cannot write '%s': %s", file,
				  strerror(errno));
			return EX_CANTCREAT;
		}
		return 0;
	}
	snprintf(path, sizeof(path), "/secrets/%s", w->ci_secret_name);
	status = docker_call(d, "DELETE", path, NULL, 0, NULL);
	if (status >= 300 && status != 404) {
		log_error("secret %s: %s (a service that mounts it must drop it first)",
			  w->ci_secret_name, d->error);
		goto out_free;
	}
	buf_printf(&labels, "\"com.docker.stack.namespace\":\"%s\",\"" WARM_LABEL "\":\"%s\"",
		   w->stack, w->host);
	if (docker_secret_create(d, w->ci_secret_name, buf_str(&labels), secret, n, id,
				 sizeof(id)) < 0) {
		log_error("secret %s: %s", w->ci_secret_name, d->error);
		goto out_free;
	}
	rc = 0;
out_free:
	buf_free(&labels);
	return rc;
}

/* Creates (or finds) the CI client in master with its service account
 * holding create-realm, and stores its secret. kc is logged in. */
static int warm_ci_client_apply(struct docker *d, const struct warm *w, const struct config *cfg,
				struct keycloak *kc)
{
	const char *client_id = cfg->value[SET_KEYCLOAK_CLIENT_ID];
	const char *file = cfg->value[SET_WARM_CI_SECRET_FILE];
	struct buf path = BUF_INIT, body = BUF_INIT, resp = BUF_INIT;
	char id[96], user[96], secret[256] = "";
	bool exists, kept = false;
	int rc = -1; /* -1: a Keycloak call failed, said at the end */

	buf_puts(&path, "/admin/realms/master/clients?clientId=");
	buf_form_value(&path, client_id);
	if (warm_admin(kc, "GET", path.data, NULL, 200, &resp) != KC_OK)
		goto out_free;
	exists = first_string(&resp, "id", id, sizeof(id)) == 0;
	if (!exists) {
		/* a client lost with its instance's data is made again with the
		 * secret Drone holds, when that can be read back */
		if (file && warm_ci_secret_read(file, client_id, secret, sizeof(secret)) == 0) {
			kept = true;
		} else if (file && access(file, F_OK) == 0) {
			log_warn(
				"warm_ci_secret_file '%s' is not one drone-deps wrote for client %s (empty, cut short or of another shape): its content is not taken as a secret; the new client's secret replaces it",
				file, client_id);
		}
		if (!kept && random_alnum(secret, CI_SECRET_LEN) < 0) {
			log_error("no randomness for the CI client's secret");
			rc = EX_UNAVAILABLE;
			goto out_free;
		}
		log_secret_add(secret);
		buf_puts(&body, "{\"clientId\":");
		buf_json_string(&body, client_id);
		buf_puts(&body, ",\"name\":\"drone-deps CI\",\"enabled\":true,"
				"\"protocol\":\"openid-connect\",\"publicClient\":false,"
				"\"clientAuthenticatorType\":\"client-secret\","
				"\"serviceAccountsEnabled\":true,\"standardFlowEnabled\":false,"
				"\"directAccessGrantsEnabled\":false,\"secret\":");
		if (buf_json_string(&body, secret) < 0 || buf_puts(&body, "}") < 0 ||
		    warm_admin(kc, "POST", "/admin/realms/master/clients", body.data, 201, NULL) !=
			    KC_OK ||
		    warm_admin(kc, "GET", path.data, NULL, 200, &resp) != KC_OK ||
		    first_string(&resp, "id", id, sizeof(id)) < 0)
			goto out_free;
	}
	/* The one role it needs (idempotent: a role held already is kept).
	 * Keycloak gives a realm's creator that realm's admin roles. */
	buf_reset(&path);
	buf_printf(&path, "/admin/realms/master/clients/%s/service-account-user", id);
	if (warm_admin(kc, "GET", path.data, NULL, 200, &resp) != KC_OK ||
	    first_string(&resp, "id", user, sizeof(user)) < 0 ||
	    warm_admin(kc, "GET", "/admin/realms/master/roles/create-realm", NULL, 200, &resp) !=
		    KC_OK)
		goto out_free;
	buf_reset(&body);
	buf_printf(&body, "[%s]", buf_str(&resp));
	buf_reset(&path);
	buf_printf(&path, "/admin/realms/master/users/%s/role-mappings/realm", user);
	if (warm_admin(kc, "POST", path.data, body.data, 204, NULL) != KC_OK)
		goto out_free;

	if (exists) {
		/* the client's current secret: what the file must hold */
		buf_reset(&path);
		buf_printf(&path, "/admin/realms/master/clients/%s/client-secret", id);
		if (warm_admin(kc, "GET", path.data, NULL, 200, &resp) != KC_OK ||
		    first_string(&resp, "value", secret, sizeof(secret)) < 0)
			goto out_free;
		log_secret_add(secret);
	}
	if (exists && warm_ci_secret_exists(d, w, file, client_id, secret)) {
		log_info(
			"CI client %s exists in realm master: left as it is, its secret not rotated (in %s %s)",
			client_id, file ? "the file" : "the swarm secret",
			file ? file : w->ci_secret_name);
		rc = 0;
		goto out_free;
	}
	/* new, or the client is there but its secret went missing where it
	 * goes (or the file holds another value): store the current one,
	 * unchanged */
	rc = warm_ci_secret_store(d, w, file, client_id, secret);
	if (rc == 0)
		log_info(
			"CI client %s %s in realm master (service account with the role create-realm); its secret is in %s %s%s",
			client_id,
			exists ? "exists"
			: kept ? "created again with the secret already in the file (not rotated)"
			       : "created",
			file ? "the file" : "the swarm secret", file ? file : w->ci_secret_name,
			file ? " (mode 0600)" : "");
out_free:
	if (rc == -1) {
		log_error("CI client %s: %s", client_id, kc->error);
		rc = EX_UNAVAILABLE;
	}
	explicit_bzero(secret, sizeof(secret));
	buf_free(&path);
	buf_free_secret(&body);
	buf_free_secret(&resp);
	return rc;
}

/* Logs in as the admin at keycloak_url (which, through a proxy, may
 * answer a little after the task is healthy) and sets up the CI client. */
static int warm_ci_client(struct docker *d, struct warm *w, const struct config *cfg,
			  long long deadline_ms)
{
	struct keycloak kc;
	int kr, rc = EX_UNAVAILABLE;

	d->deadline_ms = deadline_ms;
	if (!w->password[0]) {
		rc = warm_read_password(d, w);
		if (rc)
			return rc;
	}
	if (keycloak_init(&kc, cfg->keycloak_url, cfg->value[SET_KEYCLOAK_ADMIN_USER], w->password,
			  cfg->value[SET_CA_CERT], cfg->insecure) < 0)
		return EX_SOFTWARE;
	kc.deadline_ms = deadline_ms;
	kc.http.connect_timeout_ms = 2000;
	while (keycloak_ready(&kc, 2000) != KC_OK) {
		if (signals_poll_stop() || http_now_ms() >= deadline_ms) {
			log_error("%s does not answer at %s: %s", w->host, cfg->keycloak_url,
				  kc.error);
			goto out_cleanup;
		}
		http_sleep_ms(POLL_MS);
	}
	kr = keycloak_login(&kc, false);
	if (kr == KC_AUTH) {
		log_error(
			"%s refused the admin password of secret %s: its database (volume %s) was made with another one; remove service %s, then volume %s (its realms and CI client go with it), and run warm again",
			cfg->keycloak_url, w->secret_name, w->volume, w->service, w->volume);
		goto out_cleanup;
	}
	if (kr != KC_OK) {
		log_error("admin login at %s: %s", cfg->keycloak_url, kc.error);
		goto out_cleanup;
	}
	rc = warm_ci_client_apply(d, w, cfg, &kc);
	(void)keycloak_logout(&kc); /* only ends the session early */
out_cleanup:
	keycloak_cleanup(&kc);
	return rc;
}

/* With warm_db postgres, what the database needs (its image checked
 * and its name found free or ours, with Keycloak's, before anything is
 * made), then the database itself, reconciled as Keycloak is and
 * healthy before Keycloak starts on it. 0 or an exit code (logged). */
static int warm_pg_apply(struct docker *d, struct warm *w, const struct config *cfg,
			 long long deadline_ms)
{
	char what[300];
	struct warm_svc db = { .name = w->db_service,
			       .image = w->db_image,
			       .what = what,
			       .replicas = 1,
			       .spec = warm_pg_db_spec };
	long long force = 0;
	int rc;

	snprintf(what, sizeof(what), "the database of %s", w->host);
	rc = warm_pg_secret(d, w);
	if (rc == 0)
		rc = warm_pg_network(d, w);
	if (rc == 0)
		rc = warm_service_apply(d, w, cfg, &db, &force);
	if (rc == 0)
		rc = warm_wait_ready(d, &db, cfg, force, deadline_ms);
	return rc;
}

int warm_reconcile(struct deps *d)
{
	const struct config *cfg = d->cfg;
	long long deadline_ms = http_now_ms() + cfg->timeout * 1000;
	struct warm w;
	struct warm_svc app;
	long long force = 0;
	int rc;

	memset(&w, 0, sizeof(w));
	rc = warm_names(&w, cfg);
	if (rc == 0 && cfg->warm_postgres)
		rc = warm_pg_names(&w, cfg);
	if (rc)
		return rc;
	app = (struct warm_svc){ .name = w.service,
				 .image = w.image,
				 .what = w.host,
				 .replicas = cfg->warm_replicas > 0 ? cfg->warm_replicas : 1,
				 .spec = cfg->warm_postgres ? warm_pg_spec : warm_spec };
	if (!deps_docker_available(d)) {
		log_error(
			"docker_host: no Docker socket at %s: action warm deploys on the swarm through it; mount it (-v /var/run/docker.sock:/var/run/docker.sock) or set docker_host",
			cfg->docker_socket);
		return EX_UNAVAILABLE;
	}
	rc = deps_docker_ready(d, deadline_ms);
	if (rc)
		return rc;
	rc = warm_check_node(&d->docker, &w, cfg);
	if (rc == 0)
		rc = warm_check_owner(&d->docker, w.service);
	if (rc == 0 && cfg->warm_postgres)
		rc = warm_pg_check_image(&d->docker, &w);
	if (rc == 0 && cfg->warm_postgres)
		rc = warm_check_owner(&d->docker, w.db_service);
	if (rc == 0)
		rc = warm_secret(&d->docker, &w);
	if (rc == 0 && cfg->warm_postgres)
		rc = warm_pg_apply(&d->docker, &w, cfg, deadline_ms);
	if (rc == 0)
		rc = warm_service_apply(&d->docker, &w, cfg, &app, &force);
	if (rc == 0)
		rc = warm_wait_ready(&d->docker, &app, cfg, force, deadline_ms);
	/* the client's few calls get a budget of their own, however long
	 * the start took */
	if (rc == 0 && cfg->warm_ci_client)
		rc = warm_ci_client(&d->docker, &w, cfg, http_now_ms() + CI_CLIENT_MS);
	explicit_bzero(w.password, sizeof(w.password));
	return rc;
}
