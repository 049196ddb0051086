#!/bin/sh
# A recipe's test, run as drone-deps' hook inside its own BusyBox image, or
# in the recipe's test image (tests/Dockerfile) after an up step: only sh
# and BusyBox's applets (wget, no curl or jq). It logs in as the run's test
# user with the binding in its environment (DEPS_KEYCLOAK_*).
#
# Usage: tests/run.sh [hold|fail]   hold: then wait, so the run can be
#        cancelled; fail: then exit 1, as a failing test does
set -eu

echo "hook: realm $DEPS_KEYCLOAK_REALM ($DEPS_KEYCLOAK_MODE), run $DEPS_RUN_ID"
# Which settings reached this shell (names only: values may be secrets).
env | sed -n 's/^\(PLUGIN_[^=]*\)=.*/hook: setting \1/p' | sort

# The password grant with the client secret, scope openid: the login an
# app under test would do. The values are [A-Za-z0-9], so no URL encoding.
form="grant_type=password&scope=openid&client_id=$DEPS_KEYCLOAK_CLIENT_ID"
form="$form&client_secret=$DEPS_KEYCLOAK_CLIENT_SECRET"
form="$form&username=$DEPS_KEYCLOAK_USERNAME&password=$DEPS_KEYCLOAK_PASSWORD"
if ! tokens=$(wget -q -O- --post-data "$form" "$DEPS_KEYCLOAK_ISSUER/protocol/openid-connect/token"); then
	echo "hook: login refused"
	exit 1
fi
case $tokens in
*'"id_token":"'*) echo "hook: logged in as $DEPS_KEYCLOAK_USERNAME, id_token received" ;;
*)
	echo "hook: login answered without an id_token"
	exit 1
	;;
esac

if [ "${1:-}" = fail ]; then
	echo "hook: failing on purpose"
	exit 1
fi
if [ "${1:-}" = hold ]; then
	echo "hook: holding"
	sleep 600
fi
