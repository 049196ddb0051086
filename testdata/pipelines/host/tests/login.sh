#!/bin/sh
# The recipe's test for the host suite: logs in through Traefik as the
# run's test user, the way an app under test would, and checks that the
# token's issuer is the one the binding names and the one Keycloak's
# discovery document announces. Only sh and BusyBox applets. BusyBox's wget
# speaks TLS (ssl_client) but checks no certificate: drone-deps itself is
# what the suite holds to ca_cert; here the names and the issuer matter.
#
# Usage: tests/login.sh [hold]   hold: then wait, so the run can be killed
set -eu

echo "hook: realm $DEPS_KEYCLOAK_REALM ($DEPS_KEYCLOAK_MODE), run $DEPS_RUN_ID"
echo "hook: url $DEPS_KEYCLOAK_URL"

# the value of a top-level string member of a one-line JSON document
member() { sed -n 's/.*"'"$1"'":"\([^"]*\)".*/\1/p'; }

discovery=$(wget -q -O- "$DEPS_KEYCLOAK_ISSUER/.well-known/openid-configuration")
issuer=$(printf '%s' "$discovery" | member issuer)
endpoint=$(printf '%s' "$discovery" | member token_endpoint)

form="grant_type=password&scope=openid&client_id=$DEPS_KEYCLOAK_CLIENT_ID"
form="$form&client_secret=$DEPS_KEYCLOAK_CLIENT_SECRET"
form="$form&username=$DEPS_KEYCLOAK_USERNAME&password=$DEPS_KEYCLOAK_PASSWORD"
if ! tokens=$(wget -q -O- --post-data "$form" "$endpoint"); then
	echo "hook: login refused at $endpoint"
	exit 1
fi
# The access token's payload: base64url, unpadded.
payload=$(printf '%s' "$tokens" | member access_token | cut -d. -f2 | tr '_-' '/+')
case $((${#payload} % 4)) in
2) payload="$payload==" ;;
3) payload="$payload=" ;;
esac
iss=$(printf '%s' "$payload" | base64 -d 2>/dev/null | member iss)
echo "hook: token iss $iss"
echo "hook: discovery issuer $issuer"
echo "hook: DEPS_KEYCLOAK_ISSUER $DEPS_KEYCLOAK_ISSUER"
if [ -z "$iss" ] || [ "$iss" != "$issuer" ] || [ "$iss" != "$DEPS_KEYCLOAK_ISSUER" ]; then
	echo "hook: the issuers differ"
	exit 1
fi
echo "hook: logged in as $DEPS_KEYCLOAK_USERNAME, the three issuers agree"

if [ "${1:-}" = hold ]; then
	echo "hook: holding"
	sleep 600
fi
