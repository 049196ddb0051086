"""python-keycloak.py - a realm for a CI run with python-keycloak (PyPI), the
admin library of the seed harness's own language. The side-by-side
benchmark's Python contender (the real-server section of make bench).

  KC_URL=http://127.0.0.1:8080 KC_ADMIN_PASSWORD=... REALM=myapp-0a6fb2 \\
  CLIENT_ID=myapp TEST_USER=test-user TEST_PASSWORD=... \\
  python python-keycloak.py [command [args...]]

Calls: admin token; create realm; create client (its id from the Location
header); read its secret; create user; set the password; delete the realm.
The command runs with the same DEPS_KEYCLOAK_* variables drone-deps gives a
hook; the realm is deleted whatever it does.
"""
import os
import subprocess
import sys

from keycloak import KeycloakAdmin

env = os.environ
url, realm, client_id = env["KC_URL"], env["REALM"], env["CLIENT_ID"]
username, password = env["TEST_USER"], env["TEST_PASSWORD"]

kc = KeycloakAdmin(server_url=url, username=env.get("KC_ADMIN_USER", "admin"),
                   password=env["KC_ADMIN_PASSWORD"], realm_name="master",
                   user_realm_name="master")
kc.create_realm({"realm": realm, "enabled": True})
status = 0
try:
    kc.change_current_realm(realm)
    cid = kc.create_client({"clientId": client_id, "enabled": True, "publicClient": False,
                            "standardFlowEnabled": True, "directAccessGrantsEnabled": True,
                            "redirectUris": ["*"]})
    secret = kc.get_client_secrets(cid)["value"]
    uid = kc.create_user({"username": username, "enabled": True,
                          "email": username + "@example.org", "emailVerified": True,
                          "firstName": "Test", "lastName": "User"})
    kc.set_user_password(uid, password, temporary=False)
    if len(sys.argv) > 1:
        status = subprocess.call(sys.argv[1:], env=dict(
            env, DEPS_KEYCLOAK_URL=url, DEPS_KEYCLOAK_REALM=realm,
            DEPS_KEYCLOAK_ISSUER=url + "/realms/" + realm, DEPS_KEYCLOAK_CLIENT_ID=client_id,
            DEPS_KEYCLOAK_CLIENT_SECRET=secret, DEPS_KEYCLOAK_USERNAME=username,
            DEPS_KEYCLOAK_PASSWORD=password))
        if status < 0:
            status = 128 - status
finally:
    kc.change_current_realm("master")
    kc.delete_realm(realm)
sys.exit(status)
