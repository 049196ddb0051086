#!/bin/sh
# curl-jq.sh - a realm for a CI run the way people write it by hand in a CI
# step: one curl per call, jq to pick values out, then the test command,
# then delete the realm. The side-by-side benchmark's "by hand" contender.
#
#   KC_URL=http://127.0.0.1:8080 KC_ADMIN_PASSWORD=... REALM=myapp-0a6fb2 \
#   CLIENT_ID=myapp TEST_USER=test-user TEST_PASSWORD=... \
#   curl-jq.sh [command [args...]]
#
# Calls: admin token; create realm; create client; look up the client's id;
# read its secret; create user; look up the user's id; set the password;
# delete the realm. The command runs with the same DEPS_KEYCLOAK_* variables
# drone-deps gives a hook. The realm is deleted whatever the command does.
set -eu

: "${KC_URL:?}" "${KC_ADMIN_PASSWORD:?}" "${REALM:?}" "${CLIENT_ID:?}"
: "${TEST_USER:?}" "${TEST_PASSWORD:?}"
KC_ADMIN_USER=${KC_ADMIN_USER:-admin}

TOKEN=$(curl -sS --fail-with-body -X POST \
	"$KC_URL/realms/master/protocol/openid-connect/token" \
	-d grant_type=password -d client_id=admin-cli \
	--data-urlencode "username=$KC_ADMIN_USER" \
	--data-urlencode "password=$KC_ADMIN_PASSWORD" | jq -r .access_token)

kc() {
	method=$1
	path=$2
	shift 2
	curl -sS --fail-with-body -X "$method" "$KC_URL/admin/realms$path" \
		-H "Authorization: Bearer $TOKEN" -H "Accept: application/json" \
		-H "Content-Type: application/json" "$@"
}

kc POST "" -d "{\"realm\":\"$REALM\",\"enabled\":true}"
trap 'kc DELETE "/$REALM"' EXIT

kc POST "/$REALM/clients" -d "{\"clientId\":\"$CLIENT_ID\",\"enabled\":true,
	\"publicClient\":false,\"standardFlowEnabled\":true,
	\"directAccessGrantsEnabled\":true,\"redirectUris\":[\"*\"]}"
CID=$(kc GET "/$REALM/clients?clientId=$CLIENT_ID" | jq -r '.[0].id')
SECRET=$(kc GET "/$REALM/clients/$CID/client-secret" | jq -r .value)

kc POST "/$REALM/users" -d "{\"username\":\"$TEST_USER\",\"enabled\":true,
	\"email\":\"$TEST_USER@example.org\",\"emailVerified\":true,
	\"firstName\":\"Test\",\"lastName\":\"User\"}"
UID_=$(kc GET "/$REALM/users?username=$TEST_USER&exact=true" | jq -r '.[0].id')
kc PUT "/$REALM/users/$UID_/reset-password" \
	-d "{\"type\":\"password\",\"value\":\"$TEST_PASSWORD\",\"temporary\":false}"

if [ $# -gt 0 ]; then
	DEPS_KEYCLOAK_URL=$KC_URL DEPS_KEYCLOAK_REALM=$REALM \
	DEPS_KEYCLOAK_ISSUER=$KC_URL/realms/$REALM \
	DEPS_KEYCLOAK_CLIENT_ID=$CLIENT_ID DEPS_KEYCLOAK_CLIENT_SECRET=$SECRET \
	DEPS_KEYCLOAK_USERNAME=$TEST_USER DEPS_KEYCLOAK_PASSWORD=$TEST_PASSWORD \
		"$@"
fi
