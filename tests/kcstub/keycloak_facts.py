#!/usr/bin/env python3
"""Measures, on a running Keycloak (or the stand-in), the facts the stand-in
models for drone-deps, so the two can be compared:

  - the answer to the import of an existing realm;
  - the answer of the admin API to an expired token, and to a token whose
    session was logged out;
  - the size of the master admin token with 0, 10 and 50 realms besides
    master, with admin-cli's lightweight access tokens off (and on);
  - four concurrent imports of one realm name;
  - admin sessions on master: one per password login, ended by logout.

    python3 tests/kcstub/keycloak_facts.py URL [ADMIN_PASSWORD] [--stub]

URL is a Keycloak with no realm but master (tools/keycloak.sh start DIR
PORT gives one; its password is the default here). With --stub, URL is the
stand-in and its admin_token_roles knob stands for admin-cli's attribute.
Every realm it makes is deleted, and the attribute restored, at the end.
Takes a few minutes on a real Keycloak (about 60 realm imports, and a 65 s
wait for a token to expire)."""
import base64
import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

LIGHTWEIGHT = "client.use.lightweight.access.token.enabled"


class Server:
    def __init__(self, url, password, stub):
        self.url, self.password, self.stub = url.rstrip("/"), password, stub

    def call(self, method, path, body=None, token=None, form=None):
        headers, data = {}, None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = "Bearer " + token
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode()

    def login(self):
        status, _, body = self.call("POST", "/realms/master/protocol/openid-connect/token", form={
            "client_id": "admin-cli", "grant_type": "password", "username": "admin",
            "password": self.password})
        if status != 200:
            sys.exit("admin login: %s %s" % (status, body))
        return json.loads(body)

    def token(self):
        return self.login()["access_token"]

    def lightweight(self, on):
        if self.stub:
            self.call("POST", "/_stub/config", {"admin_token_roles": not on})
            return
        tok = self.token()
        client = json.loads(self.call("GET", "/admin/realms/master/clients?clientId=admin-cli", token=tok)[2])[0]
        client.setdefault("attributes", {})[LIGHTWEIGHT] = "true" if on else "false"
        self.call("PUT", "/admin/realms/master/clients/" + client["id"], client, tok)


def fact(text):
    print(text, flush=True)


def plain_401(status, headers, body):
    www = [k for k in headers if k.lower() == "www-authenticate"]
    return "%s %s%s" % (status, body, ", with WWW-Authenticate" if www else ", no WWW-Authenticate")


def main():
    args = [a for a in sys.argv[1:] if a != "--stub"]
    if not args:
        sys.exit(__doc__)
    kc = Server(args[0], args[1] if len(args) > 1 else "Adm1n-Pa55word-e2e", "--stub" in sys.argv)
    made = []

    def make(name, token=None):
        status, _, body = kc.call("POST", "/admin/realms", {"realm": name, "enabled": True}, token or kc.token())
        if status == 201:
            made.append(name)
        return status, body

    try:
        make("facts-dup")
        fact("duplicate realm import: %s %s" % make("facts-dup"))
        kc.call("DELETE", "/admin/realms/facts-dup", token=kc.token())
        made.remove("facts-dup")

        tok = kc.login()
        uid = json.loads(kc.call("GET", "/admin/realms/master/users?username=admin&exact=true",
                                 token=tok["access_token"])[2])[0]["id"]

        def sessions():
            return [s["id"] for s in json.loads(kc.call(
                "GET", "/admin/realms/master/users/%s/sessions" % uid, token=tok["access_token"])[2])]
        before = len(sessions())
        logins = [kc.login() for _ in range(3)]
        fact("admin sessions on master: %d more after 3 password logins" % (len(sessions()) - before))
        status, _, _ = kc.call("POST", "/realms/master/protocol/openid-connect/logout",
                               form={"client_id": "admin-cli", "refresh_token": logins[0]["refresh_token"]})
        fact("logout: %s; its session still listed: %s" % (status, logins[0]["session_state"] in sessions()))
        fact("admin API with the logged-out token: " + plain_401(
            *kc.call("GET", "/admin/realms", token=logins[0]["access_token"])))
        for t in logins[1:]:
            kc.call("POST", "/realms/master/protocol/openid-connect/logout",
                    form={"client_id": "admin-cli", "refresh_token": t["refresh_token"]})

        kc.lightweight(False)
        for target in (0, 10, 50):
            while len(made) < target:
                make("facts-size-%02d" % len(made))
            t = kc.token()
            claims = json.loads(base64.urlsafe_b64decode(t.split(".")[1] + "=="))
            fact("master admin token, lightweight off, %d realms besides master: %d bytes, %d resource_access entries"
                 % (len(made), len(t), len(claims.get("resource_access", {}))))
        kc.lightweight(True)
        fact("master admin token, lightweight on, %d realms besides master: %d bytes" % (len(made), len(kc.token())))

        if kc.stub:
            # A real import takes a second or more; the stand-in's takes
            # import_ms, during which overlapping imports meet as they do
            # on Keycloak.
            kc.call("POST", "/_stub/config", {"import_ms": 500})
        tok2 = kc.token()
        results, go = [], threading.Barrier(4)

        def racer():
            go.wait(30)
            results.append(make("facts-race", tok2))
        threads = [threading.Thread(target=racer) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        fact("four concurrent imports of one name: %s" % sorted("%s %s" % r for r in results))

        fact("waiting 65 s for an admin token to expire...")
        time.sleep(65)
        fact("admin API with an expired token: " + plain_401(*kc.call("GET", "/admin/realms", token=tok["access_token"])))
    finally:
        kc.lightweight(True)
        for name in made:
            kc.call("DELETE", "/admin/realms/" + name, token=kc.token())


if __name__ == "__main__":
    main()
