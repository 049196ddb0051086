"""A hook that proves the binding works: a password grant for the test user
through the run's own confidential client, as an app under test would do."""
import json
import os
import sys
import urllib.parse
import urllib.request

form = urllib.parse.urlencode({
    "grant_type": "password",
    "client_id": os.environ["DEPS_KEYCLOAK_CLIENT_ID"],
    "client_secret": os.environ["DEPS_KEYCLOAK_CLIENT_SECRET"],
    "username": os.environ["DEPS_KEYCLOAK_USERNAME"],
    "password": os.environ["DEPS_KEYCLOAK_PASSWORD"],
    "scope": "openid",
}).encode()
url = os.environ["DEPS_KEYCLOAK_ISSUER"] + "/protocol/openid-connect/token"
with urllib.request.urlopen(urllib.request.Request(url, data=form), timeout=10) as r:
    token = json.load(r)
if not token.get("access_token"):
    sys.exit("no access token")
if token.get("id_token", "").count(".") != 2:
    sys.exit("no id_token for scope=openid")
with open(sys.argv[1], "w") as f:
    f.write("login ok\n")
