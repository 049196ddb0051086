#!/usr/bin/env python3
"""kcstub: a stand-in for the parts of the Keycloak 26 HTTP API that drone-deps
and common admin tools use, for tests that cannot run a real Keycloak.

Python 3.11 standard library only. One process, in-memory state, threaded
HTTP/1.1 server with keep-alive, optional HTTPS, and a small control API under
/_stub/ for tests (fault injection, seeding, request log).

Behaviour follows Keycloak's own source; the classes relied on are named next
to the code that models them. Where the stand-in is knowingly simpler than
Keycloak it says so in a comment.

Run `kcstub.py --help` for the options; tests/kcstub/README.md documents the
control API.
"""

import argparse
import base64
import hashlib
import hmac
import ipaddress
import json
import math
import os
import re
import secrets
import signal
import socket
import ssl
import string
import struct
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, unquote_plus, urlsplit

KC_VERSION = "26.4.0"
JSON = "application/json"
HTML = "text/html;charset=UTF-8"
MAX_BODY = 256 * 1024 * 1024


def jdump(obj):
    # Keycloak serialises compactly (Jackson, NON_NULL inclusion).
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def int_bytes(v):
    return v.to_bytes((v.bit_length() + 7) // 8 or 1, "big")


def new_id():
    return str(uuid.uuid4())


def gen_secret():
    # SecretGenerator.randomString(32): 32 alphanumeric characters.
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(32))


def now_ms():
    return int(time.time() * 1000)


# --------------------------------------------------------------------------
# RSA (RS256) in pure Python, so tokens are real JWTs verifiable with JWKS.
# --------------------------------------------------------------------------

def _small_primes(limit=2000):
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(limit ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(sieve[i * i::i]))
    return [i for i in range(limit) if sieve[i]]


_SMALL_PRIMES = _small_primes()
_SMALL_PRODUCT = math.prod(_SMALL_PRIMES)


def _probable_prime(n, rounds=24):
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(rounds):
        a = 2 + secrets.randbelow(n - 3)
        x = pow(a, d, n)
        if x == 1 or x == n - 1:
            continue
        for _ in range(s - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def _gen_prime(bits):
    while True:
        c = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        if math.gcd(c, _SMALL_PRODUCT) != 1:
            continue
        if _probable_prime(c):
            return c


def _der_len(n):
    if n < 0x80:
        return bytes([n])
    b = int_bytes(n)
    return bytes([0x80 | len(b)]) + b


def _der(tag, content):
    return bytes([tag]) + _der_len(len(content)) + content


def _der_int(v):
    return _der(0x02, v.to_bytes(v.bit_length() // 8 + 1, "big"))


class RSAKey:
    def __init__(self, bits=2048):
        e = 65537
        while True:
            p, q = _gen_prime(bits // 2), _gen_prime(bits // 2)
            if p == q:
                continue
            n = p * q
            phi = (p - 1) * (q - 1)
            if n.bit_length() == bits and math.gcd(e, phi) == 1:
                break
        d = pow(e, -1, phi)
        self.n, self.e, self.p, self.q = n, e, p, q
        self.dp, self.dq, self.qinv = d % (p - 1), d % (q - 1), pow(q, -1, p)
        self.k = (bits + 7) // 8
        self.kid = b64u(hashlib.sha256(self.spki_der()).digest())

    def spki_der(self):
        rsapub = _der(0x30, _der_int(self.n) + _der_int(self.e))
        algid = _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d010101")) + b"\x05\x00")
        return _der(0x30, algid + _der(0x03, b"\x00" + rsapub))

    def sign_rs256(self, data):
        # EMSA-PKCS1-v1_5 with a SHA-256 DigestInfo, signed with CRT.
        t = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(data).digest()
        em = b"\x00\x01" + b"\xff" * (self.k - len(t) - 3) + b"\x00" + t
        m = int.from_bytes(em, "big")
        m1, m2 = pow(m, self.dp, self.p), pow(m, self.dq, self.q)
        s = m2 + ((self.qinv * (m1 - m2)) % self.p) * self.q
        return s.to_bytes(self.k, "big")

    def jwk(self):
        return {"kid": self.kid, "kty": "RSA", "alg": "RS256", "use": "sig",
                "n": b64u(int_bytes(self.n)), "e": b64u(int_bytes(self.e))}


class KeyHolder:
    """Generates the signing key in the background so start-up stays fast."""

    def __init__(self):
        self._ready = threading.Event()
        self._key = None
        self.hmac_key = secrets.token_bytes(64)
        threading.Thread(target=self._generate, name="rsa-keygen", daemon=True).start()

    def _generate(self):
        self._key = RSAKey()
        self._ready.set()

    @property
    def rsa(self):
        self._ready.wait()
        return self._key


def jwt_rs256(keys, claims):
    header = {"alg": "RS256", "typ": "JWT", "kid": keys.rsa.kid}
    signing_input = (b64u(jdump(header)) + "." + b64u(jdump(claims))).encode("ascii")
    return signing_input.decode("ascii") + "." + b64u(keys.rsa.sign_rs256(signing_input))


def jwt_hs512(keys, claims):
    # Keycloak signs refresh tokens with a realm HMAC key (HS512).
    header = {"alg": "HS512", "typ": "JWT", "kid": "hmac-" + keys.rsa.kid[:8]}
    signing_input = (b64u(jdump(header)) + "." + b64u(jdump(claims))).encode("ascii")
    sig = hmac.new(keys.hmac_key, signing_input, hashlib.sha512).digest()
    return signing_input.decode("ascii") + "." + b64u(sig)


# --------------------------------------------------------------------------
# Errors. Keycloak answers errors in three shapes; each class below is one.
# --------------------------------------------------------------------------

class Resp:
    __slots__ = ("status", "body", "ctype", "headers")

    def __init__(self, status, body=b"", ctype=None, headers=None):
        self.status = status
        self.body = body if isinstance(body, bytes) else jdump(body)
        self.ctype = ctype if ctype is not None else (JSON if body not in (b"", None) else None)
        self.headers = list(headers or [])


class KCError(Exception):
    pass


class Mapped(KCError):
    """An exception without an entity, turned into a response by
    KeycloakErrorHandler: {"error": <message>} as JSON, or Keycloak's HTML
    error page when MediaTypeMatcher.isHtmlRequest() says the client asked
    for HTML (an Accept header naming text/html or text/*; */* does not)."""

    def __init__(self, status, message, description=None):
        super().__init__(message)
        self.status, self.message, self.description = status, message, description


class Entity(KCError):
    """ErrorResponse.error()/exists(): the response carries its own entity
    ({"errorMessage": ...}), so JAX-RS returns it as is, always JSON."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


class OAuth(KCError):
    """CorsErrorResponseException and ClientAuthUtil.errorResponse:
    {"error", "error_description"}, always JSON."""

    def __init__(self, status, error, description, headers=None):
        super().__init__(description)
        self.status, self.error, self.description = status, error, description
        self.headers = headers or []


class Raw(KCError):
    def __init__(self, resp):
        super().__init__("raw")
        self.resp = resp


UNKNOWN_ERROR = ("unknown_error", "For more on this error consult the server log.")
CONSUMES_MISMATCH = "The content-type header value did not match the value in @Consumes"


def is_html_request(accept):
    # MediaTypeMatcher.isHtmlRequest: true when any accepted media type that is
    # not a wildcard type (*/...) is compatible with text/html.
    if not accept:
        return False
    for part in accept.split(","):
        mt = part.split(";", 1)[0].strip().lower()
        if "/" not in mt:
            continue
        typ, sub = mt.split("/", 1)
        if typ == "*":
            continue
        if typ == "text" and sub in ("html", "*"):
            return True
    return False


def html_error_page(status):
    # KeycloakErrorHandler renders the login theme's error.ftl with
    # "Page not found" for 404 and "An internal server error has occurred"
    # for every other status.
    msg = "Page not found" if status == 404 else "An internal server error has occurred"
    page = ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>Sign in to Keycloak</title>\n</head>\n<body>\n"
            "<div id=\"kc-error-message\">\n<p class=\"instruction\">%s</p>\n</div>\n"
            "</body>\n</html>\n" % msg)
    return page.encode("utf-8")


REASONS = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 415: "Unsupported Media Type",
    429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}


def http_msg(status):
    # What a jakarta.ws.rs WebApplicationException without a message says.
    return "HTTP %d %s" % (status, REASONS.get(status, "Error"))


# ReservedCharValidator.RESERVED_CHARS_PATTERN (RFC 3986 gen-delims and
# sub-delims, plus backslash). The message names the first match.
RESERVED_RE = re.compile(r"[:/?#@!$&()*+,;=\[\]\\]")


def check_reserved(value):
    m = RESERVED_RE.search(value or "")
    if m:
        # ReservedCharException extends BadRequestException (no entity), so
        # it goes through KeycloakErrorHandler: 400 {"error": "Character ..."}.
        raise Mapped(400, "Character '%s' not allowed." % m.group(0))


def coerce_str(v):
    # Jackson coerces JSON scalars into String fields (Map<String,String>).
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    raise Entity(400, "unable to read contents from stream")


def to_bool(v, default=None):
    if v is None:
        return default
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    if isinstance(v, (int, float)):
        return bool(v)
    return default


def blank(v):
    return v is None or (isinstance(v, str) and v.strip() == "")


# --------------------------------------------------------------------------
# Representations and defaults (ModelToRepresentation, RealmManager,
# DefaultExportImportManager.importRealm).
# --------------------------------------------------------------------------

REALM_FIELDS = [
    ("notBefore", 0), ("defaultSignatureAlgorithm", "RS256"), ("revokeRefreshToken", False),
    ("refreshTokenMaxReuse", 0), ("accessTokenLifespan", 300),
    ("accessTokenLifespanForImplicitFlow", 900), ("ssoSessionIdleTimeout", 1800),
    ("ssoSessionMaxLifespan", 36000), ("ssoSessionIdleTimeoutRememberMe", 0),
    ("ssoSessionMaxLifespanRememberMe", 0), ("offlineSessionIdleTimeout", 2592000),
    ("offlineSessionMaxLifespanEnabled", False), ("offlineSessionMaxLifespan", 5184000),
    ("clientSessionIdleTimeout", 0), ("clientSessionMaxLifespan", 0),
    ("clientOfflineSessionIdleTimeout", 0), ("clientOfflineSessionMaxLifespan", 0),
    ("accessCodeLifespan", 60), ("accessCodeLifespanUserAction", 300),
    ("accessCodeLifespanLogin", 1800), ("actionTokenGeneratedByAdminLifespan", 43200),
    ("actionTokenGeneratedByUserLifespan", 300), ("oauth2DeviceCodeLifespan", 600),
    ("oauth2DevicePollingInterval", 5),
    # RealmEntity.enabled is a primitive false and importRealm only sets it
    # when the representation has it: a realm POSTed without "enabled": true
    # is created disabled, and its token endpoint answers 403 "Realm not enabled".
    ("enabled", False),
    ("sslRequired", "external"), ("registrationAllowed", False),
    ("registrationEmailAsUsername", False), ("rememberMe", False), ("verifyEmail", False),
    ("loginWithEmailAllowed", True), ("duplicateEmailsAllowed", False),
    ("resetPasswordAllowed", False), ("editUsernameAllowed", False),
    ("bruteForceProtected", False), ("permanentLockout", False), ("maxTemporaryLockouts", 0),
    ("bruteForceStrategy", "MULTIPLE"), ("maxFailureWaitSeconds", 900),
    ("minimumQuickLoginWaitSeconds", 60), ("waitIncrementSeconds", 60),
    ("quickLoginCheckMilliSeconds", 1000), ("maxDeltaTimeSeconds", 43200),
    ("failureFactor", 30), ("requiredCredentials", ["password"]), ("passwordPolicy", None),
    ("otpPolicyType", "totp"), ("otpPolicyAlgorithm", "HmacSHA1"), ("otpPolicyInitialCounter", 0),
    ("otpPolicyDigits", 6), ("otpPolicyLookAheadWindow", 1), ("otpPolicyPeriod", 30),
    ("otpPolicyCodeReusable", False),
    ("otpSupportedApplications", ["totpAppFreeOTPName", "totpAppGoogleName", "totpAppMicrosoftAuthenticatorName"]),
    ("localizationTexts", {}),
    ("webAuthnPolicyRpEntityName", "keycloak"), ("webAuthnPolicySignatureAlgorithms", ["ES256", "RS256"]),
    ("webAuthnPolicyRpId", ""), ("webAuthnPolicyAttestationConveyancePreference", "not specified"),
    ("webAuthnPolicyAuthenticatorAttachment", "not specified"),
    ("webAuthnPolicyRequireResidentKey", "not specified"),
    ("webAuthnPolicyUserVerificationRequirement", "not specified"),
    ("webAuthnPolicyCreateTimeout", 0), ("webAuthnPolicyAvoidSameAuthenticatorRegister", False),
    ("webAuthnPolicyAcceptableAaguids", []), ("webAuthnPolicyExtraOrigins", []),
    ("browserSecurityHeaders", {
        "contentSecurityPolicyReportOnly": "", "xContentTypeOptions": "nosniff",
        "referrerPolicy": "no-referrer", "xRobotsTag": "none", "xFrameOptions": "SAMEORIGIN",
        "contentSecurityPolicy": "frame-src 'self'; frame-ancestors 'self'; object-src 'none';",
        "strictTransportSecurity": "max-age=31536000; includeSubDomains"}),
    ("smtpServer", {}), ("loginTheme", None), ("accountTheme", None), ("adminTheme", None),
    ("emailTheme", None), ("eventsEnabled", False), ("eventsListeners", ["jboss-logging"]),
    ("enabledEventTypes", []), ("adminEventsEnabled", False), ("adminEventsDetailsEnabled", False),
    ("identityProviders", []), ("identityProviderMappers", []),
    ("internationalizationEnabled", False), ("supportedLocales", None), ("defaultLocale", None),
    ("browserFlow", "browser"), ("registrationFlow", "registration"),
    ("directGrantFlow", "direct grant"), ("resetCredentialsFlow", "reset credentials"),
    ("clientAuthenticationFlow", "clients"), ("dockerAuthenticationFlow", "docker auth"),
    ("firstBrokerLoginFlow", "first broker login"), ("userManagedAccessAllowed", False),
    ("organizationsEnabled", False), ("verifiableCredentialsEnabled", False),
    ("adminPermissionsEnabled", False),
    ("clientProfiles", {"profiles": []}), ("clientPolicies", {"policies": []}),
]
REALM_FIELD_NAMES = [k for k, _ in REALM_FIELDS]
REALM_SETTABLE = set(REALM_FIELD_NAMES) | {"displayName", "displayNameHtml"}

# ModelToRepresentation.REALM_EXCLUDED_ATTRIBUTES: stored as realm attributes
# but shown as fields, never in "attributes", and never removed by a PUT.
REALM_EXCLUDED_ATTRIBUTES = {
    "displayName", "displayNameHtml", "defaultSignatureAlgorithm", "bruteForceProtected",
    "permanentLockout", "maxTemporaryLockouts", "bruteForceStrategy", "maxFailureWaitSeconds",
    "waitIncrementSeconds", "quickLoginCheckMilliSeconds", "minimumQuickLoginWaitSeconds",
    "maxDeltaTimeSeconds", "failureFactor", "actionTokenGeneratedByAdminLifespan",
    "actionTokenGeneratedByUserLifespan", "offlineSessionMaxLifespanEnabled",
    "offlineSessionMaxLifespan", "webAuthnPolicyRpEntityName", "webAuthnPolicySignatureAlgorithms",
    "webAuthnPolicyRpId", "webAuthnPolicyAttestationConveyancePreference",
    "webAuthnPolicyAuthenticatorAttachment", "webAuthnPolicyRequireResidentKey",
    "webAuthnPolicyUserVerificationRequirement", "webAuthnPolicyCreateTimeout",
    "webAuthnPolicyAvoidSameAuthenticatorRegister", "webAuthnPolicyAcceptableAaguids",
    "clientPolicies", "clientProfiles", "firstBrokerLoginFlowId", "organizationsEnabled",
    "verifiableCredentialsEnabled", "adminPermissionsEnabled", "adminPermissionsClientId",
}

# Attributes a fresh Keycloak 26 realm stores (device grant, client session
# and CIBA/PAR settings live in the attribute table).
DEFAULT_STORED_ATTRIBUTES = {
    "cibaBackchannelTokenDeliveryMode": "poll", "cibaExpiresIn": "120",
    "cibaAuthRequestedUserHint": "login_hint", "cibaInterval": "5",
    "parRequestUriLifespan": "60", "oauth2DeviceCodeLifespan": "600",
    "oauth2DevicePollingInterval": "5", "clientSessionIdleTimeout": "0",
    "clientSessionMaxLifespan": "0", "clientOfflineSessionIdleTimeout": "0",
    "clientOfflineSessionMaxLifespan": "0", "realmReusableOtpCode": "false",
}

# ModelToRepresentation always puts the CIBA and PAR policy into "attributes".
COMPUTED_ATTRIBUTES = {
    "cibaBackchannelTokenDeliveryMode": "poll", "cibaExpiresIn": "120",
    "cibaInterval": "5", "cibaAuthRequestedUserHint": "login_hint",
    "parRequestUriLifespan": "60",
}

CLIENT_FIELDS = [
    ("name", None), ("description", None), ("rootUrl", None), ("adminUrl", None),
    ("baseUrl", None), ("surrogateAuthRequired", False), ("enabled", True),
    ("alwaysDisplayInConsole", False), ("clientAuthenticatorType", "client-secret"),
    ("secret", None), ("registrationAccessToken", None), ("redirectUris", []),
    ("webOrigins", []), ("notBefore", 0), ("bearerOnly", False), ("consentRequired", False),
    ("standardFlowEnabled", True), ("implicitFlowEnabled", False),
    ("directAccessGrantsEnabled", False), ("serviceAccountsEnabled", False),
    ("publicClient", False), ("frontchannelLogout", True), ("protocol", "openid-connect"),
    ("attributes", {}), ("authenticationFlowBindingOverrides", {}), ("fullScopeAllowed", True),
    ("nodeReRegistrationTimeout", -1), ("protocolMappers", None),
    ("defaultClientScopes", ["web-origins", "acr", "profile", "roles", "basic", "email"]),
    ("optionalClientScopes", ["address", "phone", "offline_access", "organization", "microprofile-jwt"]),
]
CLIENT_BOOLS = {k for k, v in CLIENT_FIELDS if isinstance(v, bool)}

ADMIN_ACCESS = {"view": True, "configure": True, "manage": True}
USER_ACCESS = {"view": True, "manage": True, "manageGroupMembership": True,
               "impersonate": True, "mapRoles": True}


def builtin_clients(realm_name, master):
    """The clients RealmManager.createRealm sets up (account, account-console,
    admin-cli, broker, realm-management or master-realm, security-admin-console)."""
    base = "/realms/%s/account/" % realm_name
    specs = [
        ("account", {"name": "${client_account}", "publicClient": True, "baseUrl": base,
                     "rootUrl": "${authBaseUrl}", "redirectUris": ["/realms/%s/account/*" % realm_name]}),
        ("account-console", {"name": "${client_account-console}", "publicClient": True,
                             "baseUrl": base, "rootUrl": "${authBaseUrl}",
                             "redirectUris": ["/realms/%s/account/*" % realm_name],
                             "fullScopeAllowed": False}),
        ("admin-cli", {"name": "${client_admin-cli}", "publicClient": True,
                       "standardFlowEnabled": False, "directAccessGrantsEnabled": True}),
        ("broker", {"name": "${client_broker}", "bearerOnly": True}),
        ("master-realm" if master else "realm-management",
         {"name": "master Realm" if master else "${client_realm-management}", "bearerOnly": True}),
        ("security-admin-console", {"name": "${client_security-admin-console}", "publicClient": True,
                                    "rootUrl": "${authAdminUrl}",
                                    "baseUrl": "/admin/%s/console/" % realm_name,
                                    "redirectUris": ["/admin/%s/console/*" % realm_name],
                                    "webOrigins": ["+"]}),
    ]
    out = []
    for cid, rep in specs:
        c = new_client_record(dict(rep, clientId=cid))
        c["builtin"] = True
        out.append(c)
    return out


def new_client_record(rep, client_id=None):
    """RepresentationToModel.createClient: unset booleans take the model's
    defaults (enabled and standard flow on, everything else off); a
    confidential client without a secret gets a generated one."""
    c = {"id": client_id or new_id(), "clientId": rep.get("clientId"), "builtin": False}
    for key, default in CLIENT_FIELDS:
        val = rep.get(key)
        if val is None:
            val = json.loads(json.dumps(default))
        elif key in CLIENT_BOOLS:
            val = to_bool(val, default)
        c[key] = val
    if not isinstance(c["attributes"], dict):
        raise Entity(400, "unable to read contents from stream")
    c["attributes"] = {k: coerce_str(v) for k, v in c["attributes"].items() if v is not None}
    if c["secret"] is None and not c["publicClient"] and not c["bearerOnly"]:
        c["secret"] = gen_secret()
    if c["secret"] is not None:
        c["secret"] = coerce_str(c["secret"])
        c["attributes"].setdefault("client.secret.creation.time", str(int(time.time())))
    c["attributes"].setdefault("realm_client", "false")
    c["attributes"].setdefault("post.logout.redirect.uris", "+")
    c["serviceAccountUserId"] = None
    return c


def client_rep(c):
    rep = {"id": c["id"], "clientId": c["clientId"]}
    for key, _ in CLIENT_FIELDS:
        if c.get(key) is not None:
            rep[key] = c[key]
    rep["access"] = dict(ADMIN_ACCESS)
    return rep


def new_user_record(realm, rep, source):
    """DefaultExportImportManager.createUser (realm import and partial import)
    and UsersResource.createUser (admin API). Usernames and e-mail addresses
    are stored lower-case (KeycloakModelUtils.toLowerCaseSafe,
    UserAdapter.setEmail); an imported user without "enabled": true is
    disabled (user.setEnabled(rep.isEnabled() != null && rep.isEnabled()))."""
    username = rep.get("username")
    email = rep.get("email")
    if realm["fields"]["registrationEmailAsUsername"] and not blank(email):
        username = email
    if blank(username):
        if source == "api":
            raise Entity(400, "User name is missing")
        raise Mapped(500, UNKNOWN_ERROR[0], UNKNOWN_ERROR[1])
    username = coerce_str(username).lower()
    email = None if blank(email) else coerce_str(email).strip().lower()
    attrs = rep.get("attributes") or {}
    if not isinstance(attrs, dict):
        raise Entity(400, "unable to read contents from stream")
    norm_attrs = {}
    for k, v in attrs.items():
        if v is None:
            continue
        vals = v if isinstance(v, list) else [v]
        norm_attrs[k] = [coerce_str(x) for x in vals if x is not None]
    required = rep.get("requiredActions") or []
    u = {
        "id": rep.get("id") if (source != "api" and rep.get("id")) else new_id(),
        "username": username, "email": email,
        "firstName": rep.get("firstName"), "lastName": rep.get("lastName"),
        "enabled": to_bool(rep.get("enabled"), False),
        "emailVerified": to_bool(rep.get("emailVerified"), False),
        # UserResource.createUser stamps the time; a realm import keeps
        # the representation's, and with none the user has none (26.4.7).
        "createdTimestamp": rep.get("createdTimestamp") or (now_ms() if source == "api" else None),
        "attributes": norm_attrs, "requiredActions": list(required),
        "password": None, "groups": list(rep.get("groups") or []),
        "realmRoles": list(rep.get("realmRoles") or []),
        "clientRoles": dict(rep.get("clientRoles") or {}),
        "serviceAccountClientId": rep.get("serviceAccountClientId"),
        "admin": False, "notBefore": 0,
    }
    creds = rep.get("credentials") or []
    if not isinstance(creds, list):
        raise Entity(400, "unable to read contents from stream")
    for cred in creds:
        if not isinstance(cred, dict):
            continue
        ctype = cred.get("type") or "password"
        if ctype != "password":
            continue
        if cred.get("value") is not None:
            u["password"] = coerce_str(cred["value"])
        elif cred.get("secretData") or cred.get("hashedSaltedValue"):
            # An exported hash: kept, but the stand-in cannot verify it.
            u["password"] = object()
        # RepresentationToModel.createCredentials: a temporary password adds
        # the UPDATE_PASSWORD required action.
        if to_bool(cred.get("temporary"), False) and "UPDATE_PASSWORD" not in u["requiredActions"]:
            u["requiredActions"].append("UPDATE_PASSWORD")
    return u


def user_rep(u, brief=False):
    rep = {"id": u["id"], "username": u["username"]}
    for key in ("firstName", "lastName", "email"):
        if u.get(key) is not None:
            rep[key] = u[key]
    rep["emailVerified"] = u["emailVerified"]
    if not brief and u["attributes"]:
        rep["attributes"] = u["attributes"]
    if u["createdTimestamp"] is not None:
        rep["createdTimestamp"] = u["createdTimestamp"]
    rep["enabled"] = u["enabled"]
    rep["totp"] = False
    rep["disableableCredentialTypes"] = []
    rep["requiredActions"] = list(u["requiredActions"])
    rep["notBefore"] = u["notBefore"]
    rep["access"] = dict(USER_ACCESS)
    return rep


def role_record(rep, container_id, client_role=False):
    name = rep.get("name")
    if blank(name):
        raise Mapped(500, UNKNOWN_ERROR[0], UNKNOWN_ERROR[1])
    return {"id": rep.get("id") or new_id(), "name": name, "description": rep.get("description"),
            "composite": bool(rep.get("composite") or rep.get("composites")),
            "clientRole": client_role, "containerId": container_id,
            "attributes": rep.get("attributes") or {}}


def role_rep(r):
    rep = {"id": r["id"], "name": r["name"]}
    if r.get("description") is not None:
        rep["description"] = r["description"]
    rep.update({"composite": r["composite"], "clientRole": r["clientRole"],
                "containerId": r["containerId"], "attributes": r["attributes"]})
    return rep


def group_record(rep, parent_path=""):
    name = rep.get("name")
    if blank(name):
        raise Mapped(500, UNKNOWN_ERROR[0], UNKNOWN_ERROR[1])
    path = parent_path + "/" + name
    g = {"id": rep.get("id") or new_id(), "name": name, "path": path,
         "attributes": rep.get("attributes") or {}, "realmRoles": rep.get("realmRoles") or [],
         "clientRoles": rep.get("clientRoles") or {}, "subGroups": []}
    for sub in rep.get("subGroups") or []:
        g["subGroups"].append(group_record(sub, path))
    return g


def group_rep(g):
    return {"id": g["id"], "name": g["name"], "path": g["path"],
            "subGroupCount": len(g["subGroups"]), "subGroups": [group_rep(s) for s in g["subGroups"]],
            "attributes": g["attributes"], "realmRoles": g["realmRoles"],
            "clientRoles": g["clientRoles"], "access": dict(ADMIN_ACCESS)}


def find_group_by_path(groups, path):
    for g in groups:
        if g["path"] == path:
            return g
        found = find_group_by_path(g["subGroups"], path)
        if found:
            return found
    return None


# --------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------

FAULT_KINDS = ("reset", "hostile", "fail", "hold", "expire")
HOSTILE_MODES = ("huge", "nonjson", "truncated", "trickle", "redirect")
# Kinds that may act after the request was handled ("after": true): the work
# is done, the answer is lost.
AFTER_KINDS = ("reset", "fail")
CONFLICT_MESSAGES = ("realm", "legacy", "26.2.4")
# The roles a master admin holds on each realm's "<realm>-realm" client
# (RealmManager.setupMasterAdminManagement: AdminRoles.ALL_REALM_ROLES).
REALM_ADMIN_ROLES = ["view-realm", "view-identity-providers", "manage-identity-providers",
                     "impersonation", "create-client", "manage-users", "query-realms",
                     "view-authorization", "query-clients", "query-users", "manage-events",
                     "manage-realm", "view-events", "view-users", "view-clients",
                     "manage-authorization", "manage-clients", "query-groups"]


class State:
    def __init__(self, admin_user, admin_password, token_lifespan, latency_ms):
        self.lock = threading.RLock()
        self.admin_user = admin_user
        self.admin_password = admin_password
        self.initial_token_lifespan = token_lifespan
        self.initial_latency_ms = latency_ms
        self.keys = KeyHolder()
        self.started = time.time()
        self.reset()

    # -- lifecycle --
    def reset(self):
        with self.lock:
            self.realms = {}          # name -> realm record, insertion ordered
            self.tokens = {}          # token string -> info
            self.sessions = {}        # session id -> user session (password logins)
            self.log = []
            self.knobs = {"latency_ms": self.initial_latency_ms, "check_issuer": True,
                          "conflict_message": "realm", "admin_token_roles": False, "import_ms": 0,
                          "admin_token_padding": 0, "list_filler": 0}
            for kind in FAULT_KINDS:
                self.knobs[kind] = []
            master = self.new_realm_record("master", new_id())
            f = master["fields"]
            f["enabled"] = True
            f["displayName"] = "Keycloak"
            f["displayNameHtml"] = "<div class=\"kc-logo-text\"><span>Keycloak</span></div>"
            f["accessTokenLifespan"] = self.initial_token_lifespan
            master["clients"] = builtin_clients("master", True)
            # RealmManager.setupAdminManagement: master's admin and
            # create-realm roles (a CI client's service account is given
            # create-realm alone).
            master["roles"] += [role_record({"name": "admin", "description": "${role_admin}",
                                             "composite": True}, master["id"]),
                                role_record({"name": "create-realm", "description": "${role_create-realm}"},
                                            master["id"])]
            admin = new_user_record(master, {"username": self.admin_user, "enabled": True}, "import")
            admin["password"] = self.admin_password
            admin["admin"] = True
            admin["realmRoles"] = ["admin", "create-realm"]
            master["users"].append(admin)
            self.realms["master"] = master

    def new_realm_record(self, name, rid):
        fields = {k: json.loads(json.dumps(v)) for k, v in REALM_FIELDS}
        fields["displayName"] = None
        fields["displayNameHtml"] = None
        realm = {"id": rid, "name": name, "fields": fields,
                 "attributes": dict(DEFAULT_STORED_ATTRIBUTES), "clients": [], "users": [],
                 "roles": [], "clientRoles": {}, "groups": [], "created": time.time()}
        default_role = role_record({"name": "default-roles-" + name.lower(),
                                    "description": "${role_default-roles}", "composite": True}, rid)
        realm["defaultRole"] = default_role
        realm["roles"] = [
            role_record({"name": "offline_access", "description": "${role_offline-access}"}, rid),
            role_record({"name": "uma_authorization", "description": "${role_uma_authorization}"}, rid),
            default_role,
        ]
        return realm

    # -- knobs --
    def token_lifespan(self):
        with self.lock:
            return self.realms["master"]["fields"]["accessTokenLifespan"]

    def knob(self, name):
        with self.lock:
            return self.knobs[name]

    def knobs_view(self):
        with self.lock:
            view = {"latency_ms": self.knobs["latency_ms"], "token_lifespan": self.token_lifespan(),
                    "check_issuer": self.knobs["check_issuer"],
                    "conflict_message": self.knobs["conflict_message"],
                    "admin_token_roles": self.knobs["admin_token_roles"],
                    "import_ms": self.knobs["import_ms"],
                    "admin_token_padding": self.knobs["admin_token_padding"],
                    "list_filler": self.knobs["list_filler"]}
            for kind in FAULT_KINDS:
                rules = [dict(r) for r in self.knobs[kind]]
                view[kind] = None if not rules else (rules[0] if len(rules) == 1 else rules)
            return view

    def take_fault(self, method, path):
        with self.lock:
            for kind in FAULT_KINDS:
                rules = self.knobs[kind]
                for i, rule in enumerate(rules):
                    m = rule.get("method")
                    if m and m.upper() != method.upper():
                        continue
                    p = rule.get("path_prefix")
                    if p and not path.startswith(p):
                        continue
                    taken = dict(rule)
                    if rule["count"] > 0:
                        rule["count"] -= 1
                        if rule["count"] == 0:
                            del rules[i]
                    return kind, taken
        return None

    # -- request log --
    def record(self, entry):
        with self.lock:
            self.log.append(entry)

    # -- realms --
    def realm_by_id(self, rid):
        with self.lock:
            for r in self.realms.values():
                if r["id"] == rid:
                    return r
        return None

    def all_clients(self, realm):
        """A realm's clients; master also holds one "<realm>-realm" client per
        other realm (RealmManager.setupMasterAdminManagement)."""
        clients = list(realm["clients"])
        if realm["name"] == "master":
            for other in self.realms.values():
                if other["name"] == "master":
                    continue
                cid = other["name"] + "-realm"
                clients.append({
                    **new_client_record({"clientId": cid, "name": other["name"] + " Realm",
                                         "bearerOnly": True},
                                        str(uuid.uuid5(uuid.NAMESPACE_URL, "kcstub:" + other["id"]))),
                    "builtin": True})
        return clients

    def purge_tokens(self):
        now = time.time()
        with self.lock:
            if len(self.tokens) < 4096:
                return
            for key in [k for k, v in self.tokens.items() if v["exp"] < now]:
                del self.tokens[key]

    # -- user sessions (UserSessionProvider) --
    def new_session(self, realm, client, user, ip):
        """A password login makes one user session in its realm, as
        Keycloak's direct grant does; it lasts until logout, an admin
        removes it, or it expires (idle or max lifespan)."""
        now = time.time()
        sid = new_id()
        with self.lock:
            self.sessions[sid] = {"id": sid, "realm_id": realm["id"], "user_id": user["id"],
                                  "username": user["username"], "ipAddress": ip, "start": now,
                                  "lastAccess": now, "clients": {client["id"]: client["clientId"]}}
        return sid

    def live_session(self, sid):
        """The session if it is still valid, else None (an expired one is
        dropped)."""
        with self.lock:
            sess = self.sessions.get(sid)
            if sess is None:
                return None
            realm = self.realm_by_id(sess["realm_id"])
            now = time.time()
            # Keycloak 26.4.7 no longer listed a session 10 s past an idle
            # timeout of 10 s (measured): no grace window here.
            if realm is None or now > sess["lastAccess"] + realm["fields"]["ssoSessionIdleTimeout"] \
                    or now > sess["start"] + realm["fields"]["ssoSessionMaxLifespan"]:
                del self.sessions[sid]
                return None
            return sess

    def end_sessions(self, match):
        with self.lock:
            gone = [sid for sid, sess in self.sessions.items() if match(sess)]
            for sid in gone:
                del self.sessions[sid]
            return len(gone)


# --------------------------------------------------------------------------
# Realm import (RealmManager.importRealm + DefaultExportImportManager.importRealm)
# --------------------------------------------------------------------------

def apply_realm_fields(realm, rep):
    f = realm["fields"]
    defaults = dict(REALM_FIELDS)
    for key, val in rep.items():
        if key not in REALM_SETTABLE or val is None:
            continue
        default = defaults.get(key)
        if isinstance(default, bool):
            val = to_bool(val, f.get(key))
        elif isinstance(default, int) and not isinstance(val, bool):
            try:
                val = int(val)
            except (TypeError, ValueError):
                raise Entity(400, "unable to read contents from stream")
        f[key] = val


def import_realm(st, rep):
    """Build and store a realm from a RealmRepresentation. Returns the record.
    Validation order follows RealmManager.importRealm: id reserved characters,
    blank name, duplicate name, then reserved characters in the name."""
    if not isinstance(rep, dict):
        raise Entity(400, "unable to read contents from stream")
    rid = rep.get("id")
    if blank(rid):
        rid = new_id()
    else:
        rid = coerce_str(rid)
        check_reserved(rid)
    name = rep.get("realm")
    if not isinstance(name, str) or blank(name):
        raise Entity(400, "Realm name cannot be empty")
    with st.lock:
        if name in st.realms:
            raise duplicate_realm(st, name)
        if st.realm_by_id(rid) is not None:
            raise Entity(409, "Conflict detected. See logs for details")
        check_reserved(name)
        import_ms = st.knobs["import_ms"]
    # The realm is built outside the lock, as Keycloak imports in its own
    # transaction: concurrent imports overlap, and until the commit below
    # the new realm is invisible to every other request.
    realm = build_realm(st, rep, name, rid)
    if import_ms:
        time.sleep(import_ms / 1000.0)
    with st.lock:
        # The commit: the unique name (and id) constraint decides between
        # two imports that both passed the check above; Keycloak 26.4
        # answers the loser so (measured with four concurrent imports).
        if name in st.realms or st.realm_by_id(rid) is not None:
            raise Entity(409, "Duplicate resource error")
        st.realms[name] = realm
    return realm


def duplicate_realm(st, name):
    """The answer to an import of an existing name (RealmManager.importRealm's
    check before the transaction): 26.2.5+ ModelDuplicateException("Realm
    <name> already exists") -> ErrorResponse.exists (409); earlier 26.x "Conflict
    detected. See logs for details" (409); 26.2.4 alone answered 400 with
    the new text (keycloak issue 39753)."""
    style = st.knobs["conflict_message"]
    if style == "legacy":
        return Entity(409, "Conflict detected. See logs for details")
    if style == "26.2.4":
        return Entity(400, "Realm %s already exists" % name)
    return Entity(409, "Realm %s already exists" % name)


def build_realm(st, rep, name, rid):
    """The realm record of a representation, not yet stored."""
    realm = st.new_realm_record(name, rid)
    apply_realm_fields(realm, rep)
    attrs = rep.get("attributes")
    if attrs is not None:
        if not isinstance(attrs, dict):
            raise Entity(400, "unable to read contents from stream")
        for k, v in attrs.items():
            v = coerce_str(v)
            if v is None:
                realm["attributes"].pop(k, None)
            else:
                realm["attributes"][k] = v
    # Clients from the representation replace same-named built-ins
    # (RealmManager.hasClient checks before each setup step).
    seen = set()
    for crep in rep.get("clients") or []:
        if not isinstance(crep, dict) or blank(crep.get("clientId")):
            raise Mapped(500, UNKNOWN_ERROR[0], UNKNOWN_ERROR[1])
        if crep["clientId"] in seen:
            raise Entity(409, "Conflict detected. See logs for details")
        seen.add(crep["clientId"])
        c = new_client_record(crep, crep.get("id"))
        realm["clients"].append(c)
    realm["clients"] = [c for c in builtin_clients(name, False) if c["clientId"] not in seen] + realm["clients"]
    import_roles(realm, rep.get("roles"))
    for grep in rep.get("groups") or []:
        realm["groups"].append(group_record(grep))
    usernames = set()
    for urep in rep.get("users") or []:
        if not isinstance(urep, dict):
            raise Entity(400, "unable to read contents from stream")
        u = new_user_record(realm, urep, "import")
        if u["username"] in usernames:
            raise Entity(409, "Conflict detected. See logs for details")
        usernames.add(u["username"])
        realm["users"].append(u)
    for c in realm["clients"]:
        ensure_service_account(realm, c)
    return realm


def import_roles(realm, roles):
    if not roles:
        return
    if not isinstance(roles, dict):
        raise Entity(400, "unable to read contents from stream")
    for rrep in roles.get("realm") or []:
        if any(r["name"] == rrep.get("name") for r in realm["roles"]):
            continue
        realm["roles"].append(role_record(rrep, realm["id"]))
    for cid, lst in (roles.get("client") or {}).items():
        client = next((c for c in realm["clients"] if c["clientId"] == cid), None)
        if client is None:
            raise Mapped(500, UNKNOWN_ERROR[0], UNKNOWN_ERROR[1])
        bucket = realm["clientRoles"].setdefault(cid, [])
        for rrep in lst or []:
            bucket.append(role_record(rrep, client["id"], True))


def ensure_service_account(realm, client):
    # RealmManager.setupClientServiceAccountsAndAuthorizationOnImport and
    # ClientManager.enableServiceAccount: "service-account-<clientId>".
    if not client.get("serviceAccountsEnabled") or client.get("serviceAccountUserId"):
        return
    name = "service-account-" + client["clientId"].lower()
    u = next((x for x in realm["users"] if x["username"] == name), None)
    if u is None:
        u = new_user_record(realm, {"username": name, "enabled": True}, "import")
        u["serviceAccountClientId"] = client["clientId"]
        realm["users"].append(u)
    client["serviceAccountUserId"] = u["id"]


def realm_attributes_rep(realm):
    attrs = dict(COMPUTED_ATTRIBUTES)
    for k, v in realm["attributes"].items():
        if k in REALM_EXCLUDED_ATTRIBUTES or k.startswith("_browser_header"):
            continue
        attrs[k] = v
    return attrs


def realm_rep(realm, brief=False):
    f = realm["fields"]
    rep = {"id": realm["id"], "realm": realm["name"]}
    for key in ("displayName", "displayNameHtml"):
        if f.get(key) is not None:
            rep[key] = f[key]
    if brief:
        # ModelToRepresentation.toBriefRepresentation: id, realm,
        # displayName, displayNameHtml (when set), enabled.
        rep["enabled"] = f["enabled"]
        return rep
    for key in REALM_FIELD_NAMES:
        if f.get(key) is not None:
            rep[key] = f[key]
    rep["defaultRole"] = {k: v for k, v in role_rep(realm["defaultRole"]).items() if k != "attributes"}
    rep["attributes"] = realm_attributes_rep(realm)
    return rep


def public_realm_users(realm):
    # UsersResource never lists service-account users.
    return [u for u in realm["users"] if not u.get("serviceAccountClientId")]


# --------------------------------------------------------------------------
# Partial import (PartialImportManager, AbstractPartialImport and the
# per-type handlers)
# --------------------------------------------------------------------------

def partial_import(st, realm, rep):
    if not isinstance(rep, dict):
        raise Mapped(500, UNKNOWN_ERROR[0], UNKNOWN_ERROR[1])
    policy = rep.get("ifResourceExists") or rep.get("policy") or "FAIL"
    if policy not in ("FAIL", "SKIP", "OVERWRITE"):
        # Policy.valueOf fails inside JSON reading -> ModelException -> 500.
        raise Mapped(500, UNKNOWN_ERROR[0], UNKNOWN_ERROR[1])
    for key in ("clients", "groups", "users"):
        if rep.get(key) is not None and not isinstance(rep[key], list):
            raise Mapped(500, UNKNOWN_ERROR[0], UNKNOWN_ERROR[1])
    roles = rep.get("roles") or {}
    if not isinstance(roles, dict):
        raise Mapped(500, UNKNOWN_ERROR[0], UNKNOWN_ERROR[1])

    # Keycloak runs the import in its own transaction: prepare() reads
    # without holding anything, and concurrent imports into one realm
    # overlap (import_ms widens the window). The commit decides: the
    # unique client id (and username) constraint fails every import but
    # the first to commit. Modelled as the same plan made twice: once to
    # answer 409 early, once under the lock at commit time.
    partial_import_pass(st, realm, rep, policy, roles, commit=False)
    import_ms = st.knob("import_ms")
    if import_ms:
        time.sleep(import_ms / 1000.0)
    with st.lock:
        if st.realm_by_id(realm["id"]) is not realm:
            # renamed keeps the record; deleted meanwhile: the realm
            # lookup failed in the transaction
            raise Mapped(404, "Realm not found.")
        try:
            return partial_import_pass(st, realm, rep, policy, roles, commit=True)
        except Entity as exc:
            if exc.status != 409:
                raise
            # what prepare() did not see, the database constraint refuses
            # at commit: ModelDuplicateException (measured: 8 overlapping
            # imports of one client id, 7 answered so)
            raise Entity(409, "Duplicate resource error")


def partial_import_pass(st, realm, rep, policy, roles, commit):
    with st.lock:
        # Work on copies so a FAIL (409) leaves the realm untouched, as the
        # transaction rollback does in Keycloak.
        clients = list(realm["clients"])
        realm_roles = list(realm["roles"])
        client_roles = {k: list(v) for k, v in realm["clientRoles"].items()}
        groups = list(realm["groups"])
        users = list(realm["users"])
        dup_emails = realm["fields"]["duplicateEmailsAllowed"]
        plan = []  # (type, name, rep, action)

        def decide(exists, message):
            if not exists:
                return "ADDED"
            if policy == "SKIP":
                return "SKIPPED"
            if policy == "OVERWRITE":
                return "OVERWRITTEN"
            raise Entity(409, message)

        # Order is fixed by PartialImportManager: clients, roles, identity
        # providers, groups, users. prepare() runs for all before any change.
        for crep in rep.get("clients") or []:
            cid = crep.get("clientId")
            action = decide(any(c["clientId"] == cid for c in clients),
                            "Client id '%s' already exists" % cid)
            plan.append(("CLIENT", cid, crep, action))
        for rrep in roles.get("realm") or []:
            name = rrep.get("name")
            if name is None:
                raise Mapped(500, UNKNOWN_ERROR[0], UNKNOWN_ERROR[1])
            action = decide(any(r["name"] == name for r in realm_roles),
                            "Realm role '%s' already exists." % name)
            plan.append(("REALM_ROLE", name, rrep, action))
        for cid, lst in (roles.get("client") or {}).items():
            for rrep in lst or []:
                name = rrep.get("name")
                action = decide(any(r["name"] == name for r in client_roles.get(cid, [])),
                                "Client role '%s' for client '%s' already exists." % (name, cid))
                plan.append(("CLIENT_ROLE", (cid, name), rrep, action))
        for grep in rep.get("groups") or []:
            path = grep.get("path") or "/" + str(grep.get("name"))
            action = decide(find_group_by_path(groups, path) is not None,
                            "Group '%s' already exists" % path)
            plan.append(("GROUP", grep.get("name"), grep, action))
        for urep in rep.get("users") or []:
            uname = (urep.get("username") or urep.get("email") or "")
            uname_l = uname.lower()
            email = (urep.get("email") or "").lower() or None
            exists = any(u["username"] == uname_l for u in users) or (
                email is not None and not dup_emails and any(u["email"] == email for u in users))
            if urep.get("email") is None or not dup_emails:
                msg = "User with user name %s already exists." % uname
            else:
                msg = "User with user name %s or with email %s already exists." % (uname, urep.get("email"))
            plan.append(("USER", uname, urep, decide(exists, msg)))

        results = []
        for rtype, name, item, action in plan:
            rid = None
            if rtype == "CLIENT":
                old = next((c for c in clients if c["clientId"] == name), None)
                if action == "SKIPPED":
                    rid = old["id"]
                else:
                    if old is not None:
                        clients.remove(old)
                    c = new_client_record(item)
                    clients.append(c)
                    rid = c["id"]
            elif rtype == "REALM_ROLE":
                old = next((r for r in realm_roles if r["name"] == name), None)
                if action == "SKIPPED":
                    rid = old["id"]
                else:
                    if old is not None:
                        realm_roles.remove(old)
                    r = role_record(item, realm["id"])
                    realm_roles.append(r)
                    rid = r["id"]
            elif rtype == "CLIENT_ROLE":
                cid, rname = name
                client = next((c for c in clients if c["clientId"] == cid), None)
                if client is None:
                    raise Mapped(500, UNKNOWN_ERROR[0], UNKNOWN_ERROR[1])
                bucket = client_roles.setdefault(cid, [])
                old = next((r for r in bucket if r["name"] == rname), None)
                if action == "SKIPPED":
                    rid = old["id"]
                else:
                    if old is not None:
                        bucket.remove(old)
                    r = role_record(item, client["id"], True)
                    bucket.append(r)
                    rid = r["id"]
                name = rname
            elif rtype == "GROUP":
                path = item.get("path") or "/" + str(item.get("name"))
                old = find_group_by_path(groups, path)
                if action == "SKIPPED":
                    rid = old["id"]
                else:
                    if old is not None and old in groups:
                        groups.remove(old)
                    g = group_record(item)
                    groups.append(g)
                    rid = g["id"]
            elif rtype == "USER":
                uname_l = name.lower()
                email = (item.get("email") or "").lower() or None
                old = next((u for u in users if u["username"] == uname_l), None)
                if old is None and email and not dup_emails:
                    old = next((u for u in users if u["email"] == email), None)
                if action == "SKIPPED":
                    rid = old["id"]
                else:
                    if old is not None:
                        users.remove(old)
                    # UsersPartialImport.create always assigns a fresh id.
                    u = new_user_record(realm, dict(item, id=None), "import")
                    users.append(u)
                    rid = u["id"]
            results.append({"action": action, "resourceType": rtype, "resourceName": name, "id": rid})

        if not commit:
            return None
        realm["clients"] = clients
        realm["roles"] = realm_roles
        realm["clientRoles"] = client_roles
        realm["groups"] = groups
        realm["users"] = users
        for c in clients:
            ensure_service_account(realm, c)
    counts = {a: sum(1 for r in results if r["action"] == a) for a in ("ADDED", "OVERWRITTEN", "SKIPPED")}
    return {"overwritten": counts["OVERWRITTEN"], "added": counts["ADDED"],
            "skipped": counts["SKIPPED"], "results": results}


# --------------------------------------------------------------------------
# Keycloak request handling
# --------------------------------------------------------------------------

class KC:
    """One Keycloak request. dispatch() returns a Resp."""

    def __init__(self, handler, method, path, query, body):
        self.h = handler
        self.st = handler.server.state
        self.method = "GET" if method == "HEAD" else method
        self.path = path
        self.query = parse_qs(query, keep_blank_values=True)
        self.body = body
        self.headers = handler.headers

    # -- helpers --
    def q(self, name, default=None):
        vals = self.query.get(name)
        return vals[0] if vals else default

    def base(self):
        host = self.headers.get("Host") or "%s:%d" % self.h.server.server_address[:2]
        return "%s://%s" % (self.h.server.scheme, host)

    def issuer(self, realm_name):
        return "%s/realms/%s" % (self.base(), realm_name)

    def json_body(self, style):
        """Parse the request body as a JSON document. style says how Keycloak
        reports a body it cannot read: "stream" (JsonSerialization in
        DefaultExportImportManager: 400 "unable to read contents from stream"),
        "resteasy" (the JAX-RS Jackson provider: 400 invalid_request "Cannot
        parse the JSON", 500 on an empty body) or "model" (ModelException
        escaping to KeycloakErrorHandler: 500)."""
        ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if ctype != "application/json":
            raise Mapped(415, CONSUMES_MISMATCH)
        try:
            if not self.body.strip():
                raise ValueError("empty")
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            if style == "stream":
                raise Entity(400, "unable to read contents from stream")
            if style == "model" or not self.body.strip():
                raise Mapped(500, *UNKNOWN_ERROR)
            raise Mapped(400, "invalid_request", "Cannot parse the JSON")

    def to_resp(self, exc):
        if isinstance(exc, Mapped):
            if is_html_request(self.headers.get("Accept")):
                return Resp(exc.status, html_error_page(exc.status), HTML)
            body = {"error": exc.message}
            if exc.description:
                body["error_description"] = exc.description
            return Resp(exc.status, body)
        if isinstance(exc, Entity):
            return Resp(exc.status, {"errorMessage": exc.message})
        if isinstance(exc, OAuth):
            return Resp(exc.status, {"error": exc.error, "error_description": exc.description}, JSON,
                        [("Cache-Control", "no-store"), ("Pragma", "no-cache")] + exc.headers)
        if isinstance(exc, Raw):
            return exc.resp
        raise exc

    def dispatch(self):
        try:
            segs = [unquote(s) for s in self.path.split("/")[1:]]
            if segs and segs[-1] == "" and len(segs) > 1:
                segs = segs[:-1]
            if segs == [""]:
                return Resp(200, b"<!DOCTYPE html><html><head><title>Welcome to Keycloak</title>"
                                 b"</head><body><h1>Welcome to Keycloak</h1></body></html>\n", HTML)
            if segs[0] == "realms" and len(segs) >= 2:
                return self.realms_public(segs[1], segs[2:])
            if segs[0] == "admin":
                return self.admin(segs[1:])
            raise Mapped(404, http_msg(404))
        except KCError as exc:
            return self.to_resp(exc)

    # ------------------------------------------------------------------
    # /realms/{realm}/... (RealmsResource, OIDCLoginProtocolService)
    # ------------------------------------------------------------------
    def realms_public(self, name, rest):
        with self.st.lock:
            realm = self.st.realms.get(name)
        if realm is None:
            # RealmsResource.init: NotFoundException("Realm does not exist").
            raise Mapped(404, "Realm does not exist")
        iss = self.issuer(name)
        if rest == []:
            if self.method != "GET":
                raise Mapped(405, http_msg(405))
            # PublicRealmResource / PublishedRealmRepresentation.
            return Resp(200, {"realm": name,
                              "public_key": base64.b64encode(self.st.keys.rsa.spki_der()).decode("ascii"),
                              "token-service": iss + "/protocol/openid-connect",
                              "account-service": iss + "/account",
                              "tokens-not-before": realm["fields"]["notBefore"]},
                        JSON, [("Cache-Control", "no-cache")])
        if rest == [".well-known", "openid-configuration"]:
            if self.method != "GET":
                raise Mapped(405, http_msg(405))
            return Resp(200, oidc_configuration(iss), JSON, [("Cache-Control", "no-cache, must-revalidate, no-transform, no-store")])
        if rest[:2] == ["protocol", "openid-connect"]:
            sub = rest[2:]
            if sub == ["token"]:
                if self.method != "POST":
                    raise Mapped(405, http_msg(405))
                return self.token_endpoint(realm)
            if sub == ["certs"]:
                return Resp(200, {"keys": [self.st.keys.rsa.jwk()]}, "application/jwk-set+json",
                            [("Cache-Control", "no-cache")])
            if sub == ["userinfo"] and self.method in ("GET", "POST"):
                return self.userinfo(realm)
            if sub == ["token", "introspect"] and self.method == "POST":
                return self.introspect(realm)
            if sub == ["logout"] and self.method in ("GET", "POST"):
                # LogoutEndpoint.logoutToken: the refresh token's session
                # ends, with every token of it.
                form = self.form()
                rt = form.get("refresh_token", [None])[0]
                if rt:
                    with self.st.lock:
                        info = self.st.tokens.pop(rt, None)
                    if info is None or info["kind"] != "refresh" or info["realm_id"] != realm["id"]:
                        raise OAuth(400, "invalid_grant", "Invalid refresh token")
                    self.st.end_sessions(lambda sess: sess["id"] == info["sid"])
                return Resp(204)
        raise Mapped(404, http_msg(404))

    def form(self):
        ctype = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        if ctype != "application/x-www-form-urlencoded":
            return {}
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def remote_is_local(self):
        # SslRequired.EXTERNAL: HTTP is fine from loopback and private ranges.
        try:
            ip = ipaddress.ip_address(self.h.client_address[0])
        except ValueError:
            return True
        return ip.is_private or ip.is_loopback or ip.is_link_local

    # -- token endpoint (TokenEndpoint.processGrantRequest) --
    def token_endpoint(self, realm):
        form = self.form()
        f = realm["fields"]
        # TokenEndpoint.checkSsl
        if self.h.server.scheme == "http" and (
                f["sslRequired"] == "all" or (f["sslRequired"] == "external" and not self.remote_is_local())):
            raise OAuth(403, "invalid_request", "HTTPS required")
        # TokenEndpoint.checkRealm
        if not f["enabled"]:
            raise OAuth(403, "access_denied", "Realm not enabled")
        # TokenEndpoint.checkGrantType
        grant = form.get("grant_type", [None])[0]
        if grant is None:
            raise OAuth(400, "invalid_request", "Missing form parameter: grant_type")
        if grant not in ("password", "client_credentials", "refresh_token"):
            raise OAuth(400, "unsupported_grant_type", "Unsupported grant_type")
        client = self.authenticate_client(realm, form)
        # TokenEndpoint.checkParameterDuplicated
        for key, vals in form.items():
            if len(vals) > 1:
                raise OAuth(400, "invalid_request", "duplicated parameter")
        if client["bearerOnly"]:
            raise OAuth(400, "invalid_client", "Bearer-only not allowed")
        if grant == "password":
            return self.password_grant(realm, client, form)
        if grant == "client_credentials":
            return self.client_credentials_grant(realm, client, form)
        return self.refresh_grant(realm, client, form)

    def authenticate_client(self, realm, form):
        """ClientIdAndSecretAuthenticator + AuthenticationProcessor
        .handleClientAuthException: client_id/client_secret from HTTP Basic
        (RFC 6749 form-encoded) or the form; the form wins."""
        client_id = secret = None
        auth = self.headers.get("Authorization")
        if auth:
            parsed = None
            parts = auth.split(None, 1)
            if len(parts) == 2 and parts[0].lower() == "basic":
                try:
                    raw = base64.b64decode(parts[1].strip(), validate=True).decode("utf-8")
                    if ":" in raw:
                        cid, sec = raw.split(":", 1)
                        parsed = (unquote_plus(cid), unquote_plus(sec))
                except (ValueError, UnicodeDecodeError):
                    parsed = None
            if parsed:
                client_id, secret = parsed
            elif "client_id" not in form:
                raise Raw(Resp(401, b"", None, [("WWW-Authenticate", 'Basic realm="%s"' % realm["name"])]))
        if "client_id" in form:
            client_id = form["client_id"][0]
        if "client_secret" in form:
            secret = form["client_secret"][0]
        if client_id is None:
            raise OAuth(400, "invalid_client", "Missing client_id parameter")
        with self.st.lock:
            client = next((c for c in self.st.all_clients(realm) if c["clientId"] == client_id), None)
        if client is None or not client["enabled"]:
            raise OAuth(401, "invalid_client", "Invalid client or Invalid client credentials")
        if client["publicClient"]:
            return client
        if secret is None or client.get("secret") is None or not hmac.compare_digest(
                secret.encode("utf-8"), client["secret"].encode("utf-8")):
            # reportFailedAuth: note the error code is unauthorized_client.
            raise OAuth(401, "unauthorized_client", "Invalid client or Invalid client credentials")
        return client

    def password_grant(self, realm, client, form):
        # ResourceOwnerPasswordCredentialsGrantType.process
        if not client["directAccessGrantsEnabled"]:
            raise OAuth(400, "unauthorized_client", "Client not allowed for direct access grants")
        if client["consentRequired"]:
            raise OAuth(400, "invalid_client", "Client requires user consent")
        username = form.get("username", [None])[0]
        password = form.get("password", [None])[0]
        # ValidateUsername (direct grant flow)
        if username is None:
            raise OAuth(401, "invalid_request", "Missing parameter: username")
        with self.st.lock:
            user = self.find_login_user(realm, username)
            if user is None:
                raise OAuth(401, "invalid_grant", "Invalid user credentials")
            if not user["enabled"]:
                raise OAuth(400, "invalid_grant", "Account disabled")
            # ValidatePassword
            stored = user.get("password")
            if password is None or not isinstance(stored, str) or not hmac.compare_digest(
                    password.encode("utf-8"), stored.encode("utf-8")):
                raise OAuth(401, "invalid_grant", "Invalid user credentials")
            # processor.evaluateRequiredActionTriggers(): VerifyProfile adds
            # VERIFY_PROFILE when the user profile (email, firstName, lastName
            # required for users by Keycloak 24+'s default profile) is
            # incomplete, VerifyEmail adds VERIFY_EMAIL when the realm has
            # verifyEmail and the address is not verified. The actions are
            # stored on the user, so they outlive this request.
            if realm["name"] != "master" and not user.get("serviceAccountClientId"):
                if blank(user.get("email")) or blank(user.get("firstName")) or blank(user.get("lastName")):
                    if "VERIFY_PROFILE" not in user["requiredActions"]:
                        user["requiredActions"].append("VERIFY_PROFILE")
                if realm["fields"]["verifyEmail"] and not user["emailVerified"]:
                    if "VERIFY_EMAIL" not in user["requiredActions"]:
                        user["requiredActions"].append("VERIFY_EMAIL")
            if user["requiredActions"]:
                raise OAuth(400, "invalid_grant", "Account is not fully set up")
        sid = self.st.new_session(realm, client, user, self.h.client_address[0])
        return self.token_response(realm, client, user, form.get("scope", [""])[0], refresh=True, sid=sid)

    def find_login_user(self, realm, username):
        # KeycloakModelUtils.findUserByNameOrEmail
        uname = username.lower()
        if realm["fields"]["loginWithEmailAllowed"] and "@" in uname:
            for u in realm["users"]:
                if u["email"] == uname:
                    return u
        for u in realm["users"]:
            if u["username"] == uname:
                return u
        return None

    def client_credentials_grant(self, realm, client, form):
        # ClientCredentialsGrantType.process
        if client["publicClient"]:
            raise OAuth(401, "unauthorized_client", "Public client not allowed to retrieve service account")
        if not client["serviceAccountsEnabled"]:
            raise OAuth(401, "unauthorized_client", "Client not enabled to retrieve service account")
        with self.st.lock:
            user = next((u for u in realm["users"] if u["id"] == client.get("serviceAccountUserId")), None)
        if user is None:
            raise OAuth(401, "invalid_request", "The associated service account for the client does not exist")
        if not user["enabled"]:
            raise OAuth(401, "invalid_request", "User '%s' disabled" % user["username"])
        # No refresh token by default (useRefreshTokenForClientCredentialsGrant).
        return self.token_response(realm, client, user, form.get("scope", [""])[0], refresh=False)

    def refresh_grant(self, realm, client, form):
        rt = form.get("refresh_token", [None])[0]
        if rt is None:
            raise OAuth(400, "invalid_request", "Missing form parameter: refresh_token")
        with self.st.lock:
            info = self.st.tokens.get(rt)
        if info is None or info["kind"] != "refresh" or info["realm_id"] != realm["id"]:
            raise OAuth(400, "invalid_grant", "Invalid refresh token")
        if time.time() > info["exp"]:
            raise OAuth(400, "invalid_grant", "Token is not active")
        if info["client_id"] != client["clientId"]:
            raise OAuth(400, "invalid_grant", "Invalid refresh token. Token client and authorized client don't match")
        sess = self.st.live_session(info.get("sid"))
        if sess is None:
            raise OAuth(400, "invalid_grant", "Session not active")
        with self.st.lock:
            sess["lastAccess"] = time.time()
        with self.st.lock:
            user = next((u for u in realm["users"] if u["id"] == info["user_id"]), None)
        if user is None:
            raise OAuth(400, "invalid_grant", "User not found")
        if not user["enabled"]:
            raise OAuth(400, "invalid_grant", "User disabled")
        return self.token_response(realm, client, user, info.get("scope", ""), refresh=True, sid=info.get("sid"))

    def token_response(self, realm, client, user, scope_param, refresh, sid=None):
        now = int(time.time())
        master = realm["name"] == "master"
        life = self.st.token_lifespan() if master else int(realm["fields"]["accessTokenLifespan"])
        idle = int(realm["fields"]["ssoSessionIdleTimeout"])
        sid = sid or new_id()
        iss = self.issuer(realm["name"])
        scopes = ["profile", "email"]
        if scope_param and "openid" in scope_param.split():
            scopes = ["openid"] + scopes
        scope = " ".join(scopes)
        claims = {"exp": now + life, "iat": now, "jti": "onrtro:" + new_id(), "iss": iss,
                  "sub": user["id"], "typ": "Bearer", "azp": client["clientId"]}
        if not master:
            claims["aud"] = "account"
        if refresh:
            claims["sid"] = sid
        claims["acr"] = "1"
        if not master:
            claims["allowed-origins"] = [o for o in client["webOrigins"] if o != "+"]
            claims["realm_access"] = {"roles": ["offline_access", "uma_authorization",
                                                "default-roles-" + realm["name"].lower()]
                                      + list(user["realmRoles"])}
            claims["resource_access"] = {"account": {"roles": ["manage-account", "manage-account-links",
                                                                "view-profile"]}}
        elif not user.get("admin"):
            # A master user that is not the admin (a CI client's service
            # account): its realm roles, and the roles of each realm's
            # "<realm>-realm" management client it was granted as that
            # realm's creator, as they are NOW. The admin API reads this
            # client's rights from the token (KeycloakIdentity), so a token
            # from before a create or a rename lacks that realm.
            with self.st.lock:
                granted = [r["name"] for r in self.st.realms.values()
                           if r["id"] in user.get("grants", ())]
            claims["realm_access"] = {"roles": ["default-roles-master", "offline_access", "uma_authorization"]
                                      + list(user["realmRoles"])}
            claims["resource_access"] = {n + "-realm": {"roles": list(REALM_ADMIN_ROLES)} for n in granted}
        elif user.get("admin") and self.st.knob("admin_token_roles"):
            # admin-cli without lightweight access tokens: the roles of
            # every realm's management client, so the token grows with
            # each realm on the server.
            with self.st.lock:
                names = list(self.st.realms)
            claims["realm_access"] = {"roles": ["create-realm", "default-roles-master", "offline_access",
                                                "admin", "uma_authorization"]}
            claims["resource_access"] = dict(
                [(n + "-realm", {"roles": list(REALM_ADMIN_ROLES)}) for n in names if n != "master"]
                + [("master-realm", {"roles": list(REALM_ADMIN_ROLES)}),
                   ("account", {"roles": ["manage-account", "manage-account-links", "view-profile"]})])
        if master and self.st.knob("admin_token_padding"):
            # A master admin token grows with the realms on the server
            # (one management client's roles each): model it by size.
            claims.setdefault("resource_access", {})["padding"] = {
                "roles": ["x" * self.st.knob("admin_token_padding")]}
        claims["scope"] = scope
        claims.update(self.user_claims(user))
        access = jwt_rs256(self.st.keys, claims)
        resp = {"access_token": access, "expires_in": life}
        base_info = {"realm_id": realm["id"], "realm": realm["name"], "user_id": user["id"],
                     "client_id": client["clientId"], "iss": iss, "sid": sid, "scope": scope}
        with self.st.lock:
            self.st.tokens[access] = dict(base_info, kind="access", exp=now + life, claims=claims)
        if refresh:
            rclaims = {"exp": now + idle, "iat": now, "jti": new_id(), "iss": iss, "aud": iss,
                       "sub": user["id"], "typ": "Refresh", "azp": client["clientId"], "sid": sid,
                       "scope": " ".join(s for s in scopes if s != "openid") + " web-origins acr roles basic"}
            rtok = jwt_hs512(self.st.keys, rclaims)
            with self.st.lock:
                self.st.tokens[rtok] = dict(base_info, kind="refresh", exp=now + idle)
            resp["refresh_expires_in"] = idle
            resp["refresh_token"] = rtok
        else:
            resp["refresh_expires_in"] = 0
        resp["token_type"] = "Bearer"
        if "openid" in scopes:
            id_claims = {"exp": now + life, "iat": now, "jti": new_id(), "iss": iss,
                         "aud": client["clientId"], "sub": user["id"], "typ": "ID",
                         "azp": client["clientId"], "sid": sid, "acr": "1"}
            id_claims.update(self.user_claims(user))
            resp["id_token"] = jwt_rs256(self.st.keys, id_claims)
        resp["not-before-policy"] = 0
        if refresh:
            resp["session_state"] = sid
        resp["scope"] = scope
        self.st.purge_tokens()
        return Resp(200, resp, JSON, [("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    @staticmethod
    def user_claims(user):
        out = {"email_verified": user["emailVerified"]}
        first, last = user.get("firstName"), user.get("lastName")
        if first or last:
            out["name"] = " ".join(x for x in (first, last) if x)
        out["preferred_username"] = user["username"]
        if first:
            out["given_name"] = first
        if last:
            out["family_name"] = last
        if user.get("email"):
            out["email"] = user["email"]
        return out

    def bearer_info(self, realm_name=None):
        auth = self.headers.get("Authorization") or ""
        parts = auth.split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return None
        with self.st.lock:
            info = self.st.tokens.get(parts[1].strip())
            if info is None or info["kind"] != "access" or time.time() > info["exp"]:
                return None
            realm = self.st.realm_by_id(info["realm_id"])
            if realm is None or realm["name"] != info["realm"]:
                return None
            if realm_name is not None and realm["name"] != realm_name:
                return None
            if self.st.knobs["check_issuer"] and info["iss"] != self.issuer(realm["name"]):
                return None
            # A token of a login session is valid only while the session is
            # (AuthenticationManager.verifyIdentityToken): logout ends it.
            if info["kind"] == "access" and info["claims"].get("sid") and \
                    self.st.live_session(info["claims"]["sid"]) is None:
                return None
            user = next((u for u in realm["users"] if u["id"] == info["user_id"]), None)
            if user is None or not user["enabled"]:
                return None
            return info, realm, user

    def userinfo(self, realm):
        found = self.bearer_info(realm["name"])
        if found is None:
            raise Raw(Resp(401, {"error": "invalid_token", "error_description": "Token verification failed"},
                           JSON, [("WWW-Authenticate", 'Bearer realm="%s", error="invalid_token", '
                                   'error_description="Token verification failed"' % realm["name"])]))
        _, _, user = found
        rep = {"sub": user["id"]}
        rep.update(self.user_claims(user))
        return Resp(200, rep)

    def introspect(self, realm):
        form = self.form()
        self.authenticate_client(realm, form)
        token = form.get("token", [None])[0]
        with self.st.lock:
            info = self.st.tokens.get(token) if token else None
        if info is None or time.time() > info["exp"] or info["realm_id"] != realm["id"] or info["kind"] != "access":
            return Resp(200, {"active": False})
        out = dict(info.get("claims", {}))
        out.update({"client_id": info["client_id"], "username": out.get("preferred_username"),
                    "token_type": "Bearer", "active": True})
        return Resp(200, out)

    # ------------------------------------------------------------------
    # /admin/... (AdminRoot, RealmsAdminResource, RealmAdminResource, ...)
    # ------------------------------------------------------------------
    def admin(self, segs):
        if segs in ([], [""]):
            return Resp(302, b"", None, [("Location", self.base() + "/admin/master/console/")])
        if self.method == "OPTIONS":
            # AdminRoot preflight handling.
            return Resp(200, b"", None, [("Access-Control-Allow-Methods", "GET, PUT, POST, DELETE"),
                                         ("Access-Control-Allow-Headers",
                                          "Origin, Accept, X-Requested-With, Content-Type, "
                                          "Access-Control-Request-Method, Access-Control-Request-Headers, "
                                          "Authorization")])
        if segs[0] not in ("realms", "serverinfo"):
            raise Mapped(404, http_msg(404))
        # AdminRoot.authenticateRealmAdminRequest: every failure is a
        # NotAuthorizedException, whose message KeycloakErrorHandler copies;
        # the WWW-Authenticate challenge it carried is not kept.
        found = self.bearer_info()
        if found is None:
            raise Mapped(401, http_msg(401))
        info, token_realm, user = found
        is_admin = token_realm["name"] == "master" and user.get("admin")
        master_user = token_realm["name"] == "master"
        claims = info.get("claims") or {}

        def may_manage(r):
            # MgmtPermissions: the admin, or a token holding the realm's
            # management client roles (granted to its creator).
            return is_admin or (master_user and (r["name"] + "-realm") in (claims.get("resource_access") or {}))
        may_create = is_admin or (master_user and "create-realm" in
                                  ((claims.get("realm_access") or {}).get("roles") or []))
        if segs[0] == "serverinfo":
            if len(segs) != 1 or self.method != "GET":
                raise Mapped(404, http_msg(404))
            if not is_admin:
                raise Mapped(403, http_msg(403))
            up = time.time() - self.st.started
            return Resp(200, {"systemInfo": {"version": KC_VERSION, "serverTime": time.strftime("%c"),
                                             "uptime": "%d Seconds" % up, "uptimeMillis": int(up * 1000)},
                              "profileInfo": {"name": "community", "disabledFeatures": [],
                                              "previewFeatures": [], "experimentalFeatures": []}},
                        JSON, [("Cache-Control", "no-cache")])
        if len(segs) == 1:
            if self.method == "GET":
                # RealmsAdminResource.getRealms: the realms the token may
                # see; an empty visible list is 403.
                brief = (self.q("briefRepresentation", "false") or "").lower() == "true"
                with self.st.lock:
                    reps = [realm_rep(r, brief) for r in self.st.realms.values() if may_manage(r)]
                    filler = self.st.knobs["list_filler"]
                if not reps:
                    raise Mapped(403, http_msg(403))
                # name only: 100 k of them stay under drone-deps' 4 MiB cap
                reps.extend({"realm": "filler:%06d" % i} for i in range(filler))
                return Resp(200, reps, JSON, [("Cache-Control", "no-cache")])
            if self.method == "POST":
                if not may_create:
                    raise Mapped(403, http_msg(403))
                rep = self.json_body("stream")
                realm = import_realm(self.st, rep)
                if not is_admin:
                    # RealmsAdminResource.grantPermissionsToRealmCreator:
                    # the creator gets the new realm's management roles
                    # (its tokens from now on carry them).
                    with self.st.lock:
                        user.setdefault("grants", set()).add(realm["id"])
                loc = self.base() + "/admin/realms/" + quote(realm["name"], safe="")
                return Resp(201, b"", None, [("Location", loc)])
            raise Mapped(405, http_msg(405))
        # RealmsAdminResource.getRealmAdmin: lookup first (404), then the
        # realm check (403).
        name = segs[1]
        with self.st.lock:
            realm = self.st.realms.get(name)
        if realm is None:
            raise Mapped(404, "Realm not found.")
        rest = segs[2:]
        if not may_manage(realm):
            # RealmAdminResource.getRealm for a master token without view
            # rights on the realm (a holder of create-realm), master
            # included: its public name, display names when set, and two
            # login settings (measured on 26.4.7). Everything else is 403.
            if not rest and self.method == "GET" and may_create:
                with self.st.lock:
                    f = realm["fields"]
                    body = {"realm": realm["name"]}
                    for key in ("displayName", "displayNameHtml"):
                        if f.get(key) is not None:
                            body[key] = f[key]
                    body["bruteForceProtected"] = f["bruteForceProtected"]
                    body["supportedLocales"] = list(f["supportedLocales"] or [])
                return Resp(200, body, JSON, [("Cache-Control", "no-cache")])
            raise Mapped(403, http_msg(403))
        if not rest:
            return self.realm_resource(realm)
        if rest == ["partialImport"]:
            if self.method != "POST":
                raise Mapped(405, http_msg(405))
            rep = self.json_body("model")
            return Resp(200, partial_import(self.st, realm, rep))
        if rest[0] == "clients":
            return self.clients_resource(realm, rest[1:])
        if rest[0] == "users":
            return self.users_resource(realm, rest[1:])
        if rest[0] == "roles":
            return self.roles_resource(realm, rest[1:])
        if rest[0] == "groups":
            return self.groups_resource(realm, rest[1:])
        if rest[0] == "sessions" and len(rest) == 2 and self.method == "DELETE":
            # RealmAdminResource.deleteSession
            if not self.st.end_sessions(lambda sess: sess["id"] == rest[1] and sess["realm_id"] == realm["id"]):
                raise Mapped(404, "Sesssion not found")
            return Resp(204)
        raise Mapped(404, http_msg(404))

    def realm_resource(self, realm):
        name = realm["name"]
        if self.method == "GET":
            with self.st.lock:
                return Resp(200, realm_rep(realm), JSON, [("Cache-Control", "no-cache")])
        if self.method == "DELETE":
            # RealmAdminResource.deleteRealm
            if name == "master":
                raise Entity(400, "Can't remove master realm")
            with self.st.lock:
                if self.st.realms.get(name) is not realm:
                    raise Mapped(404, "Realm doesn't exist")
                del self.st.realms[name]
            return Resp(204)
        if self.method == "PUT":
            rep = self.json_body("resteasy")
            if not isinstance(rep, dict):
                raise Mapped(400, "invalid_request", "Cannot parse the JSON")
            self.update_realm(realm, rep)
            return Resp(204)
        raise Mapped(405, http_msg(405))

    def update_realm(self, realm, rep):
        """RealmAdminResource.updateRealm + DefaultExportImportManager.updateRealm."""
        new_name = rep.get("realm")
        if realm["name"] == "master" and new_name is not None and new_name != "master":
            raise Entity(400, "Can't rename master realm")
        if new_name is not None:
            m = RESERVED_RE.search(new_name)
            if m:
                # updateRealm catches ReservedCharException -> ErrorResponse.
                raise Entity(400, "Character '%s' not allowed." % m.group(0))
        attrs = rep.get("attributes")
        if attrs is not None and not isinstance(attrs, dict):
            raise Mapped(400, "invalid_request", "Cannot parse the JSON")
        with self.st.lock:
            if new_name is not None and new_name != realm["name"]:
                if blank(new_name):
                    raise Entity(400, "Realm name cannot be empty")
                if new_name in self.st.realms:
                    raise Entity(409, "Realm with same name exists")
            try:
                coerced = None if attrs is None else {k: coerce_str(v) for k, v in attrs.items()}
            except Entity:
                raise Mapped(400, "invalid_request", "Cannot parse the JSON")
            backup = json.dumps(realm["fields"])
            try:
                apply_realm_fields(realm, rep)
            except Entity:
                realm["fields"] = json.loads(backup)
                raise Mapped(400, "invalid_request", "Cannot parse the JSON")
            if coerced is not None:
                # Attributes are REPLACED, not merged: keys absent from the
                # PUT's map are removed, except REALM_EXCLUDED_ATTRIBUTES
                # (updateRealm's attrsToRemove).
                stored = realm["attributes"]
                for key in list(stored):
                    if key not in coerced and key not in REALM_EXCLUDED_ATTRIBUTES:
                        del stored[key]
                for key, val in coerced.items():
                    if val is None:
                        stored.pop(key, None)
                    else:
                        stored[key] = val
            if new_name is not None and new_name != realm["name"]:
                old = realm["name"]
                self.st.realms = {(new_name if k == old else k): v for k, v in self.st.realms.items()}
                realm["name"] = new_name

    # -- clients (ClientsResource, ClientResource) --
    def clients_resource(self, realm, rest):
        st = self.st
        if not rest:
            if self.method == "GET":
                cid = self.q("clientId")
                search = (self.q("search", "false") or "").lower() == "true"
                first = int(self.q("first", "0") or 0)
                mx = self.q("max")
                with st.lock:
                    out = []
                    for c in st.all_clients(realm):
                        if cid is not None:
                            if search and cid.lower() not in c["clientId"].lower():
                                continue
                            if not search and c["clientId"] != cid:
                                continue
                        out.append(client_rep(c))
                out = out[first:]
                if mx is not None:
                    out = out[:int(mx)]
                return Resp(200, out, JSON, [("Cache-Control", "no-cache")])
            if self.method == "POST":
                rep = self.json_body("resteasy")
                if not isinstance(rep, dict):
                    raise Mapped(400, "invalid_request", "Cannot parse the JSON")
                if blank(rep.get("clientId")):
                    raise Entity(400, "Client id is missing")
                with st.lock:
                    if any(c["clientId"] == rep["clientId"] for c in st.all_clients(realm)):
                        raise Entity(409, "Client %s already exists" % rep["clientId"])
                    c = new_client_record(rep, rep.get("id"))
                    realm["clients"].append(c)
                    ensure_service_account(realm, c)
                loc = "%s/admin/realms/%s/clients/%s" % (self.base(), quote(realm["name"], safe=""), c["id"])
                return Resp(201, b"", None, [("Location", loc)])
            raise Mapped(405, http_msg(405))
        with st.lock:
            client = next((c for c in st.all_clients(realm) if c["id"] == rest[0]), None)
        if client is None:
            raise Mapped(404, "Could not find client")
        sub = rest[1:]
        if not sub:
            if self.method == "GET":
                return Resp(200, client_rep(client), JSON, [("Cache-Control", "no-cache")])
            if self.method == "DELETE":
                with st.lock:
                    if client in realm["clients"]:
                        realm["clients"].remove(client)
                return Resp(204)
            if self.method == "PUT":
                rep = self.json_body("resteasy")
                if not isinstance(rep, dict):
                    raise Mapped(400, "invalid_request", "Cannot parse the JSON")
                with st.lock:
                    new_cid = rep.get("clientId")
                    if new_cid and new_cid != client["clientId"] and any(
                            c["clientId"] == new_cid for c in st.all_clients(realm)):
                        raise Entity(409, "Client %s already exists" % new_cid)
                    for key, _ in CLIENT_FIELDS + [("clientId", None)]:
                        if rep.get(key) is None:
                            continue
                        val = rep[key]
                        if key in CLIENT_BOOLS:
                            val = to_bool(val, client.get(key))
                        if key == "attributes":
                            if not isinstance(val, dict):
                                raise Mapped(400, "invalid_request", "Cannot parse the JSON")
                            client["attributes"].update({k: coerce_str(v) for k, v in val.items() if v is not None})
                            continue
                        client[key] = val
                    ensure_service_account(realm, client)
                return Resp(204)
            raise Mapped(405, http_msg(405))
        if sub == ["service-account-user"] and self.method == "GET":
            # ClientResource.getServiceAccountUser
            with st.lock:
                u = next((x for x in realm["users"] if x["id"] == client.get("serviceAccountUserId")), None)
            if u is None:
                raise Entity(400, "Service account not enabled for the client '%s'" % client["clientId"])
            return Resp(200, user_rep(u), JSON, [("Cache-Control", "no-cache")])
        if sub == ["client-secret"]:
            if self.method == "GET":
                rep = {"type": "secret"}
                if client.get("secret") is not None:
                    rep["value"] = client["secret"]
                return Resp(200, rep, JSON, [("Cache-Control", "no-cache")])
            if self.method == "POST":
                with st.lock:
                    client["secret"] = gen_secret()
                return Resp(200, {"type": "secret", "value": client["secret"]})
            raise Mapped(405, http_msg(405))
        raise Mapped(404, http_msg(404))

    # -- users (UsersResource, UserResource) --
    def users_resource(self, realm, rest):
        st = self.st
        if not rest or rest == ["count"]:
            if self.method == "GET":
                username = self.q("username")
                email = self.q("email")
                first_name = self.q("firstName")
                last_name = self.q("lastName")
                search = self.q("search")
                exact = (self.q("exact", "false") or "").lower() == "true"
                enabled = self.q("enabled")

                def match(val, want):
                    if want is None:
                        return True
                    if val is None:
                        return False
                    return val.lower() == want.lower() if exact else want.lower() in val.lower()

                with st.lock:
                    users = []
                    for u in public_realm_users(realm):
                        if search is not None:
                            s = search.strip().strip("*").lower()
                            if not any(s in (u.get(k) or "").lower()
                                       for k in ("username", "email", "firstName", "lastName")):
                                continue
                        if not (match(u["username"], username) and match(u.get("email"), email)
                                and match(u.get("firstName"), first_name)
                                and match(u.get("lastName"), last_name)):
                            continue
                        if enabled is not None and u["enabled"] != (enabled.lower() == "true"):
                            continue
                        users.append(u)
                    if rest == ["count"]:
                        return Resp(200, len(users))
                    brief = (self.q("briefRepresentation", "false") or "").lower() == "true"
                    first = int(self.q("first", "0") or 0)
                    mx = int(self.q("max", "100") or 100)
                    reps = [user_rep(u, brief) for u in users[first:first + mx]]
                return Resp(200, reps, JSON, [("Cache-Control", "no-cache")])
            if self.method == "POST" and not rest:
                rep = self.json_body("resteasy")
                if not isinstance(rep, dict):
                    raise Mapped(400, "invalid_request", "Cannot parse the JSON")
                with st.lock:
                    u = new_user_record(realm, rep, "api")
                    if any(x["username"] == u["username"] for x in realm["users"]):
                        raise Entity(409, "User exists with same username")
                    if u["email"] and not realm["fields"]["duplicateEmailsAllowed"] and any(
                            x["email"] == u["email"] for x in realm["users"]):
                        raise Entity(409, "User exists with same email")
                    self.validate_profile(u)
                    realm["users"].append(u)
                loc = "%s/admin/realms/%s/users/%s" % (self.base(), quote(realm["name"], safe=""), u["id"])
                return Resp(201, b"", None, [("Location", loc)])
            raise Mapped(405, http_msg(405))
        with st.lock:
            user = next((u for u in realm["users"] if u["id"] == rest[0]), None)
        if user is None:
            raise Mapped(404, "User not found")
        sub = rest[1:]
        if not sub:
            if self.method == "GET":
                with st.lock:
                    return Resp(200, user_rep(user), JSON, [("Cache-Control", "no-cache")])
            if self.method == "DELETE":
                with st.lock:
                    if user in realm["users"]:
                        realm["users"].remove(user)
                return Resp(204)
            if self.method == "PUT":
                rep = self.json_body("resteasy")
                if not isinstance(rep, dict):
                    raise Mapped(400, "invalid_request", "Cannot parse the JSON")
                self.update_user(realm, user, rep)
                return Resp(204)
            raise Mapped(405, http_msg(405))
        if sub in (["role-mappings", "realm"], ["role-mappings", "realm", "composite"]):
            # RoleMapperResource: realm-level role mappings (no composites
            # expanded but the default role's).
            if self.method == "GET":
                with st.lock:
                    names = set(user["realmRoles"])
                    if sub[-1] == "composite":
                        names |= {"default-roles-" + realm["name"].lower(), "offline_access", "uma_authorization"}
                    out = [role_rep(r) for r in realm["roles"] if r["name"] in names]
                return Resp(200, out, JSON, [("Cache-Control", "no-cache")])
            if self.method == "POST" and len(sub) == 2:
                reps = self.json_body("resteasy")
                if not isinstance(reps, list):
                    raise Mapped(400, "invalid_request", "Cannot parse the JSON")
                with st.lock:
                    for rrep in reps:
                        role = next((r for r in realm["roles"] if isinstance(rrep, dict) and (
                            r["id"] == rrep.get("id") or r["name"] == rrep.get("name"))), None)
                        if role is None:
                            raise Mapped(404, "Could not find role")
                        if role["name"] not in user["realmRoles"]:
                            user["realmRoles"].append(role["name"])
                return Resp(204)
            raise Mapped(405, http_msg(405))
        if sub == ["sessions"] and self.method == "GET":
            # UserResource.getSessions
            with st.lock:
                sids = [sid for sid, sess in st.sessions.items() if sess["user_id"] == user["id"]]
            out = []
            for sid in sids:
                sess = st.live_session(sid)
                if sess is not None:
                    out.append({"id": sid, "username": sess["username"], "userId": sess["user_id"],
                                "ipAddress": sess["ipAddress"], "start": int(sess["start"] * 1000),
                                "lastAccess": int(sess["lastAccess"] * 1000), "rememberMe": False,
                                "clients": dict(sess["clients"]), "transientUser": False})
            return Resp(200, out, JSON, [("Cache-Control", "no-cache")])
        if sub == ["logout"] and self.method == "POST":
            # UserResource.logout: every session of the user ends.
            st.end_sessions(lambda sess: sess["user_id"] == user["id"])
            return Resp(204)
        if sub == ["reset-password"]:
            if self.method != "PUT":
                raise Mapped(405, http_msg(405))
            rep = self.json_body("resteasy")
            # UserResource.resetPassword
            if not isinstance(rep, dict) or rep.get("value") is None:
                raise Mapped(400, "No password provided")
            if blank(rep.get("value")):
                raise Mapped(400, "Empty password not allowed")
            with st.lock:
                user["password"] = coerce_str(rep["value"])
                if to_bool(rep.get("temporary"), False):
                    if "UPDATE_PASSWORD" not in user["requiredActions"]:
                        user["requiredActions"].append("UPDATE_PASSWORD")
                elif "UPDATE_PASSWORD" in user["requiredActions"]:
                    user["requiredActions"].remove("UPDATE_PASSWORD")
            return Resp(204)
        raise Mapped(404, http_msg(404))

    @staticmethod
    def validate_profile(u):
        # The default user profile's username and email validators (USER_API
        # context); a failed validation is a single {field, errorMessage,
        # params} object.
        if not 3 <= len(u["username"]) <= 255:
            raise Raw(Resp(400, {"field": "username", "errorMessage": "error-invalid-length",
                                 "params": ["username", 3, 255]}))
        if u["email"] is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+", u["email"]):
            raise Raw(Resp(400, {"field": "email", "errorMessage": "invalid-email",
                                 "params": ["email", u["email"]]}))

    def update_user(self, realm, user, rep):
        with self.st.lock:
            email = rep.get("email")
            if email is not None:
                email = None if blank(email) else email.strip().lower()
                if email and email != user["email"] and not realm["fields"]["duplicateEmailsAllowed"] and any(
                        x is not user and x["email"] == email for x in realm["users"]):
                    raise Entity(409, "User exists with same email")
                user["email"] = email
            uname = rep.get("username")
            if uname is not None and uname.lower() != user["username"]:
                if any(x is not user and x["username"] == uname.lower() for x in realm["users"]):
                    raise Entity(409, "User exists with same username")
                user["username"] = uname.lower()
            for key in ("firstName", "lastName"):
                if key in rep:
                    user[key] = rep[key]
            for key in ("enabled", "emailVerified"):
                if rep.get(key) is not None:
                    user[key] = to_bool(rep[key], user[key])
            if rep.get("requiredActions") is not None:
                user["requiredActions"] = list(rep["requiredActions"])
            if rep.get("attributes") is not None:
                # UserResource.updateUser: attributes are replaced.
                attrs = {}
                for k, v in rep["attributes"].items():
                    if v is None:
                        continue
                    vals = v if isinstance(v, list) else [v]
                    attrs[k] = [coerce_str(x) for x in vals if x is not None]
                user["attributes"] = attrs
            for cred in rep.get("credentials") or []:
                if isinstance(cred, dict) and cred.get("value") is not None:
                    user["password"] = coerce_str(cred["value"])
                    if to_bool(cred.get("temporary"), False) and "UPDATE_PASSWORD" not in user["requiredActions"]:
                        user["requiredActions"].append("UPDATE_PASSWORD")

    # -- roles and groups (RoleContainerResource, GroupsResource) --
    def roles_resource(self, realm, rest):
        st = self.st
        if not rest:
            if self.method == "GET":
                with st.lock:
                    return Resp(200, [role_rep(r) for r in realm["roles"]], JSON, [("Cache-Control", "no-cache")])
            if self.method == "POST":
                rep = self.json_body("resteasy")
                if not isinstance(rep, dict) or blank(rep.get("name")):
                    raise Mapped(400, "invalid_request", "Cannot parse the JSON")
                with st.lock:
                    if any(r["name"] == rep["name"] for r in realm["roles"]):
                        raise Entity(409, "Role with name %s already exists" % rep["name"])
                    realm["roles"].append(role_record(rep, realm["id"]))
                loc = "%s/admin/realms/%s/roles/%s" % (self.base(), quote(realm["name"], safe=""),
                                                      quote(rep["name"], safe=""))
                return Resp(201, b"", None, [("Location", loc)])
            raise Mapped(405, http_msg(405))
        with st.lock:
            role = next((r for r in realm["roles"] if r["name"] == rest[0]), None)
        if role is None or len(rest) > 1:
            raise Mapped(404, "Could not find role")
        if self.method == "GET":
            return Resp(200, role_rep(role), JSON, [("Cache-Control", "no-cache")])
        if self.method == "DELETE":
            with st.lock:
                if role in realm["roles"]:
                    realm["roles"].remove(role)
            return Resp(204)
        raise Mapped(405, http_msg(405))

    def groups_resource(self, realm, rest):
        st = self.st
        if rest:
            with st.lock:
                g = next((x for x in realm["groups"] if x["id"] == rest[0]), None)
            if g is None or len(rest) > 1:
                raise Mapped(404, "Could not find group by id")
            if self.method == "GET":
                return Resp(200, group_rep(g), JSON, [("Cache-Control", "no-cache")])
            if self.method == "DELETE":
                with st.lock:
                    realm["groups"].remove(g)
                return Resp(204)
            raise Mapped(405, http_msg(405))
        if self.method == "GET":
            with st.lock:
                return Resp(200, [group_rep(g) for g in realm["groups"]], JSON, [("Cache-Control", "no-cache")])
        if self.method == "POST":
            rep = self.json_body("resteasy")
            if not isinstance(rep, dict) or blank(rep.get("name")):
                raise Mapped(400, "invalid_request", "Cannot parse the JSON")
            with st.lock:
                if any(g["name"] == rep["name"] for g in realm["groups"]):
                    raise Entity(409, "Top level group named '%s' already exists." % rep["name"])
                g = group_record(rep)
                realm["groups"].append(g)
            loc = "%s/admin/realms/%s/groups/%s" % (self.base(), quote(realm["name"], safe=""), g["id"])
            return Resp(201, b"", None, [("Location", loc)])
        raise Mapped(405, http_msg(405))


def oidc_configuration(iss):
    p = iss + "/protocol/openid-connect"
    return {
        "issuer": iss,
        "authorization_endpoint": p + "/auth",
        "token_endpoint": p + "/token",
        "introspection_endpoint": p + "/token/introspect",
        "userinfo_endpoint": p + "/userinfo",
        "end_session_endpoint": p + "/logout",
        "frontchannel_logout_session_supported": True,
        "frontchannel_logout_supported": True,
        "jwks_uri": p + "/certs",
        "check_session_iframe": p + "/login-status-iframe.html",
        "grant_types_supported": ["authorization_code", "client_credentials", "implicit", "password",
                                  "refresh_token", "urn:ietf:params:oauth:grant-type:device_code",
                                  "urn:ietf:params:oauth:grant-type:token-exchange",
                                  "urn:ietf:params:oauth:grant-type:uma-ticket",
                                  "urn:openid:params:grant-type:ciba"],
        "acr_values_supported": ["0", "1"],
        "response_types_supported": ["code", "none", "id_token", "token", "id_token token",
                                     "code id_token", "code token", "code id_token token"],
        "subject_types_supported": ["public", "pairwise"],
        "prompt_values_supported": ["none", "login", "consent"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "userinfo_signing_alg_values_supported": ["RS256", "none"],
        "request_object_signing_alg_values_supported": ["RS256", "none"],
        "response_modes_supported": ["query", "fragment", "form_post", "query.jwt", "fragment.jwt",
                                     "form_post.jwt", "jwt"],
        "registration_endpoint": iss + "/clients-registrations/openid-connect",
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic",
                                                  "client_secret_post", "tls_client_auth",
                                                  "client_secret_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
        "introspection_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic",
                                                          "client_secret_post", "tls_client_auth",
                                                          "client_secret_jwt"],
        "claims_supported": ["aud", "sub", "iss", "auth_time", "name", "given_name", "family_name",
                             "preferred_username", "email", "acr"],
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": True,
        "scopes_supported": ["openid", "basic", "web-origins", "acr", "roles", "email", "profile",
                             "address", "phone", "offline_access", "organization", "microprofile-jwt"],
        "request_parameter_supported": True,
        "request_uri_parameter_supported": True,
        "require_request_uri_registration": True,
        "code_challenge_methods_supported": ["plain", "S256"],
        "tls_client_certificate_bound_access_tokens": True,
        "revocation_endpoint": p + "/revoke",
        "revocation_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic",
                                                       "client_secret_post", "tls_client_auth",
                                                       "client_secret_jwt"],
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "device_authorization_endpoint": p + "/auth/device",
        "pushed_authorization_request_endpoint": p + "/ext/par/request",
        "require_pushed_authorization_requests": False,
        "authorization_response_iss_parameter_supported": True,
    }


# --------------------------------------------------------------------------
# Control API (/_stub/...)
# --------------------------------------------------------------------------

def _rule(kind, raw):
    if not isinstance(raw, dict):
        raise ValueError("%s must be an object, a list of objects or null" % kind)
    rule = dict(raw)
    count = rule.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool):
        raise ValueError("%s.count must be an integer" % kind)
    rule["count"] = count
    for key in ("method", "path_prefix"):
        if rule.get(key) is not None and not isinstance(rule[key], str):
            raise ValueError("%s.%s must be a string" % (kind, key))
    if kind == "fail":
        status = rule.get("status", 503)
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise ValueError("fail.status must be an HTTP status")
        rule["status"] = status
    if rule.get("after") is not None:
        if not isinstance(rule["after"], bool) or (rule["after"] and kind not in AFTER_KINDS):
            raise ValueError("after is a boolean, for " + " and ".join(AFTER_KINDS) + " only")
    if kind == "hold":
        secs = rule.get("seconds", 30)
        if not isinstance(secs, (int, float)) or isinstance(secs, bool) or not 0 <= secs <= 600:
            raise ValueError("hold.seconds must be a number from 0 to 600")
        rule["seconds"] = secs
    if kind == "hostile":
        if rule.get("mode") not in HOSTILE_MODES:
            raise ValueError("hostile.mode must be one of " + ", ".join(HOSTILE_MODES))
        if rule["mode"] == "redirect" and not isinstance(rule.get("target"), str):
            raise ValueError("hostile redirect needs a target URL")
    return rule


def stub_control(handler, method, path, body):
    st = handler.server.state

    def parse():
        if not body.strip():
            return {}
        return json.loads(body.decode("utf-8"))

    try:
        if path == "/_stub/health" and method in ("GET", "HEAD"):
            return Resp(200, {"ok": True})
        if path == "/_stub/config" and method in ("GET", "POST"):
            cfg = parse() if method == "POST" else {}
            if not isinstance(cfg, dict):
                raise ValueError("config must be a JSON object")
            with st.lock:
                pending = {}
                if "latency_ms" in cfg:
                    v = cfg["latency_ms"]
                    if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                        raise ValueError("latency_ms must be a number >= 0")
                    pending["latency_ms"] = v
                if "token_lifespan" in cfg:
                    v = cfg["token_lifespan"]
                    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                        raise ValueError("token_lifespan must be an integer >= 1")
                    pending["token_lifespan"] = v
                for kind in FAULT_KINDS:
                    if kind in cfg:
                        raw = cfg[kind]
                        if raw is None:
                            pending[kind] = []
                        elif isinstance(raw, list):
                            pending[kind] = [_rule(kind, r) for r in raw]
                        else:
                            pending[kind] = [_rule(kind, raw)]
                if "admin_token_padding" in cfg:
                    v = cfg["admin_token_padding"]
                    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                        raise ValueError("admin_token_padding must be an integer >= 0")
                    pending["admin_token_padding"] = v
                if "list_filler" in cfg:
                    # The realm list of a server with that many more realms
                    # (brief entries named filler:NNNNNN, which no client of
                    # ours reads: not a name drone-deps gives or can put in
                    # a path as it is): the list's own cost, without
                    # importing 100 k realms.
                    v = cfg["list_filler"]
                    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 1000000:
                        raise ValueError("list_filler must be an integer from 0 to 1000000")
                    pending["list_filler"] = v
                if "check_issuer" in cfg:
                    if not isinstance(cfg["check_issuer"], bool):
                        raise ValueError("check_issuer must be a boolean")
                    pending["check_issuer"] = cfg["check_issuer"]
                if "conflict_message" in cfg:
                    if cfg["conflict_message"] not in CONFLICT_MESSAGES:
                        raise ValueError("conflict_message must be one of " + ", ".join(CONFLICT_MESSAGES))
                    pending["conflict_message"] = cfg["conflict_message"]
                if "admin_token_roles" in cfg:
                    if not isinstance(cfg["admin_token_roles"], bool):
                        raise ValueError("admin_token_roles must be a boolean")
                    pending["admin_token_roles"] = cfg["admin_token_roles"]
                if "import_ms" in cfg:
                    v = cfg["import_ms"]
                    if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                        raise ValueError("import_ms must be a number >= 0")
                    pending["import_ms"] = v
                for key, val in pending.items():
                    if key == "token_lifespan":
                        st.realms["master"]["fields"]["accessTokenLifespan"] = val
                    else:
                        st.knobs[key] = val
                return Resp(200, st.knobs_view())
        if path == "/_stub/realms" and method == "GET":
            with st.lock:
                out = [{"realm": r["name"], "enabled": r["fields"]["enabled"],
                        "attributes": realm_attributes_rep(r),
                        "clients": [c["clientId"] for c in st.all_clients(r)],
                        "users": [u["username"] for u in r["users"]]}
                       for r in st.realms.values()]
            return Resp(200, out)
        if path == "/_stub/realms" and method == "POST":
            try:
                rep = parse()
            except ValueError:
                return Resp(400, {"errorMessage": "unable to read contents from stream"})
            kc = KC(handler, "POST", path, "", body)
            try:
                realm = import_realm(st, rep)
            except KCError as exc:
                return kc.to_resp(exc)
            return Resp(201, {"realm": realm["name"], "id": realm["id"]}, JSON,
                        [("Location", kc.base() + "/admin/realms/" + quote(realm["name"], safe=""))])
        if path == "/_stub/ci_client" and method == "POST":
            # The CI client as README.md makes it: confidential, service
            # account only, whose user holds master's create-realm alone.
            rep = parse()
            with st.lock:
                master = st.realms["master"]
                c = next((x for x in master["clients"] if x["clientId"] == rep["clientId"]), None)
                if c is None:
                    c = new_client_record({"clientId": rep["clientId"], "publicClient": False,
                                           "serviceAccountsEnabled": True,
                                           "standardFlowEnabled": False,
                                           "secret": rep["secret"]})
                    master["clients"].append(c)
                c["secret"] = rep["secret"]
                ensure_service_account(master, c)
                user = next(u for u in master["users"] if u["id"] == c["serviceAccountUserId"])
                if "create-realm" not in user["realmRoles"]:
                    user["realmRoles"].append("create-realm")
            return Resp(200, {"clientId": c["clientId"]})
        if path == "/_stub/requests" and method == "GET":
            with st.lock:
                return Resp(200, list(st.log))
        if path == "/_stub/tokens" and method == "GET":
            # Every token issued and not dropped: tests look for them in
            # what a client prints.
            with st.lock:
                return Resp(200, [{"kind": v["kind"], "realm": v["realm"], "client_id": v["client_id"],
                                   "token": k} for k, v in st.tokens.items()])
        if path == "/_stub/sessions" and method == "GET":
            with st.lock:
                sids = list(st.sessions)
            out = []
            for sid in sids:
                sess = st.live_session(sid)
                if sess is not None:
                    realm = st.realm_by_id(sess["realm_id"])
                    out.append({"id": sid, "realm": realm["name"], "username": sess["username"],
                                "clients": sorted(sess["clients"].values()),
                                "start": sess["start"], "lastAccess": sess["lastAccess"]})
            return Resp(200, out)
        if path == "/_stub/requests" and method == "DELETE":
            with st.lock:
                st.log.clear()
            return Resp(204)
        if path == "/_stub/reset" and method == "POST":
            st.reset()
            return Resp(200, {"ok": True})
        return Resp(404, {"error": "no such control endpoint: %s %s" % (method, path)})
    except ValueError as exc:
        return Resp(400, {"error": str(exc)})


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------

class BodyError(Exception):
    pass


SECURITY_HEADERS = [
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("X-Content-Type-Options", "nosniff"),
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kcstub"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are dropped after this
    # Headers and body go out in two writes: without TCP_NODELAY the body
    # waits for the client's delayed ACK (about 40 ms a response), which
    # would make every benchmark measure this server instead of its client.
    disable_nagle_algorithm = True

    def setup(self):
        self.conn_id = self.server.next_conn_id()
        self.aborted = False
        if self.server.ssl_ctx is not None:
            self.request.settimeout(30)
            self.request = self.server.ssl_ctx.wrap_socket(self.request, server_side=True)
        super().setup()

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass
        if self.server.ssl_ctx is not None:
            try:
                self.connection.close()
            except OSError:
                pass

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("kcstub: %s %s\n" % (self.client_address[0], fmt % args))

    def log_request(self, code="-", size="-"):
        pass

    def do_GET(self):
        self.handle_any("GET")

    def do_HEAD(self):
        self.handle_any("HEAD")

    def do_POST(self):
        self.handle_any("POST")

    def do_PUT(self):
        self.handle_any("PUT")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def do_PATCH(self):
        self.handle_any("PATCH")

    def do_OPTIONS(self):
        self.handle_any("OPTIONS")

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise BodyError("connection closed in chunked body")
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise BodyError("bad chunk size")
                if size == 0:
                    while True:
                        trailer = self.rfile.readline(65537)
                        if trailer in (b"\r\n", b"\n", b""):
                            break
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise BodyError("body too large")
                data = self.rfile.read(size)
                if len(data) < size:
                    raise BodyError("short chunk")
                chunks.append(data)
                self.rfile.readline(3)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            n = int(length)
        except ValueError:
            raise BodyError("bad Content-Length")
        if n < 0 or n > MAX_BODY:
            raise BodyError("bad Content-Length")
        data = self.rfile.read(n) if n else b""
        if len(data) < n:
            raise BodyError("short body")
        return data

    def send(self, resp, head=False):
        self.send_response_only(resp.status)
        self.send_header("Date", self.date_time_string())
        for key, val in resp.headers:
            self.send_header(key, val)
        if resp.ctype:
            self.send_header("Content-Type", resp.ctype)
        no_body = resp.status in (204, 304) or resp.status < 200
        if not no_body:
            self.send_header("Content-Length", str(len(resp.body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head and not no_body and resp.body:
            self.wfile.write(resp.body)

    def handle_any(self, method):
        t0 = time.monotonic()
        split = urlsplit(self.path)
        path, query = split.path or "/", split.query
        try:
            body = self.read_body()
        except (BodyError, OSError) as exc:
            self.close_connection = True
            try:
                self.send(Resp(400, {"error": "invalid_request", "error_description": str(exc)}))
            except OSError:
                pass
            return
        if path == "/_stub" or path.startswith("/_stub/"):
            try:
                self.send(stub_control(self, method, path, body), head=method == "HEAD")
            except OSError:
                self.close_connection = True
            return

        st = self.server.state
        fault = st.take_fault(method, path)
        latency = st.knob("latency_ms")
        if latency:
            time.sleep(latency / 1000.0)
        entry = {"method": method, "path": path, "query": query, "status": 0, "ms": 0, "conn": self.conn_id}
        recorded = self.recorded = False
        try:
            if fault is not None and fault[0] == "expire":
                # The bearer token is expired server-side before the request
                # is checked: the admin API answers its plain 401.
                self.expire_bearer(st)
                entry["fault"] = "expire"
                fault = None
            if fault is not None and (fault[0] == "hold" or fault[1].get("after")):
                # The work is done first; then the answer is held, or lost.
                done = self.dispatch_keycloak(method, path, query, body)
                entry["done"] = done.status
            if fault is not None and fault[0] == "hold":
                entry["fault"] = "hold"
                entry["status"] = done.status
                self.record_now(st, entry, t0)
                time.sleep(fault[1]["seconds"])
                self.send(done, head=method == "HEAD")
            elif fault is not None:
                kind, rule = fault
                entry["fault"] = kind if kind != "hostile" else "hostile:" + rule["mode"]
                # Logged before the fault acts: the client sees the reset or
                # the hostile answer at once and may read the log, or send
                # its next request on another connection, before this
                # thread runs again.
                if kind == "reset":
                    entry["status"] = 0
                    self.record_now(st, entry, t0)
                    self.abort_connection()
                elif kind == "hostile":
                    entry["status"] = hostile_status(rule)
                    self.record_now(st, entry, t0)
                    self.hostile(rule, method)
                else:
                    status = rule["status"]
                    body_out = rule.get("body")
                    if body_out is None:
                        body_out = {"error": http_msg(status)}
                    headers = []
                    if status == 429:
                        headers.append(("Retry-After", str(rule.get("retry_after", 1))))
                    entry["status"] = status
                    recorded = self.record_then_send(st, entry, t0, Resp(status, body_out, JSON, headers),
                                                     method)
            else:
                resp = self.dispatch_keycloak(method, path, query, body)
                entry["status"] = resp.status
                recorded = self.record_then_send(st, entry, t0, resp, method)
        except OSError:
            self.close_connection = True
        finally:
            if not (recorded or self.recorded):
                entry["ms"] = round((time.monotonic() - t0) * 1000.0, 1)
                st.record(entry)
            if not self.server.quiet:
                sys.stderr.write("kcstub: conn=%d %s %s%s -> %s (%.1f ms)%s\n" % (
                    self.conn_id, method, path, "?" + query if query else "", entry["status"],
                    entry["ms"], " [%s]" % entry["fault"] if "fault" in entry else ""))

    def dispatch_keycloak(self, method, path, query, body):
        try:
            resp = KC(self, method, path, query, body).dispatch()
        except Exception:  # an internal error becomes Keycloak's 500
            traceback.print_exc()
            resp = Resp(500, {"error": UNKNOWN_ERROR[0], "error_description": UNKNOWN_ERROR[1]})
        resp.headers = SECURITY_HEADERS + resp.headers
        return resp

    def expire_bearer(self, st):
        parts = (self.headers.get("Authorization") or "").split(None, 1)
        if len(parts) == 2 and parts[0].lower() == "bearer":
            with st.lock:
                info = st.tokens.get(parts[1].strip())
                if info is not None:
                    info["exp"] = time.time() - 1

    def record_now(self, st, entry, t0):
        entry["ms"] = round((time.monotonic() - t0) * 1000.0, 1)
        st.record(entry)
        self.recorded = True

    def record_then_send(self, st, entry, t0, resp, method):
        """Logs the request, then answers it: a client that reads the log
        right after its answer must find its request there (and a log
        cleared after an answer must not get it later)."""
        self.record_now(st, entry, t0)
        self.send(resp, head=method == "HEAD")
        return True

    def abort_connection(self):
        """Close with SO_LINGER 0: the peer sees a TCP reset, no response."""
        self.close_connection = True
        self.aborted = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        for f in (self.rfile, self.wfile):
            try:
                f.close()
            except OSError:
                pass
        try:
            self.connection.close()
        except OSError:
            pass

    def hostile(self, rule, method):
        mode = rule["mode"]
        head = method == "HEAD"
        if mode == "redirect":
            status = hostile_status(rule)
            self.send(Resp(status, b"", None, [("Location", rule["target"])]), head=head)
            return status
        if mode == "nonjson":
            page = (b"<html><head><title>502 Bad Gateway</title></head><body>"
                    b"<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center>"
                    b"</body></html>\n")
            self.send(Resp(200, page, "text/html"), head=head)
            return 200
        if mode == "truncated":
            full = jdump({"access_token": "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9." + "A" * 200,
                          "expires_in": 60, "refresh_expires_in": 1800, "token_type": "Bearer",
                          "not-before-policy": 0, "scope": "profile email"})
            self.send(Resp(200, full[:len(full) // 2], JSON), head=head)
            return 200
        if mode == "huge":
            size = int(rule.get("size", 64 * 1024 * 1024))
            prefix, suffix = b'{"padding":"', b'"}'
            self.send_response_only(200)
            self.send_header("Date", self.date_time_string())
            self.send_header("Content-Type", JSON)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if head:
                return 200
            chunk = b"a" * 65536
            remaining = size - len(prefix) - len(suffix)
            try:
                self.wfile.write(prefix)
                while remaining > 0:
                    n = min(remaining, len(chunk))
                    self.wfile.write(chunk[:n])
                    remaining -= n
                self.wfile.write(suffix)
            except OSError:
                self.close_connection = True
            return 200
        if mode == "trickle":
            duration = float(rule.get("duration", 60))
            payload = b'{"trickle":"' + b"x" * 46 + b'"}'
            self.send_response_only(200)
            self.send_header("Date", self.date_time_string())
            self.send_header("Content-Type", JSON)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if head:
                return 200
            deadline = time.monotonic() + duration
            sent = 0
            try:
                for i in range(len(payload)):
                    if time.monotonic() >= deadline:
                        break
                    self.wfile.write(payload[i:i + 1])
                    sent += 1
                    time.sleep(1.0)
            except OSError:
                pass
            if sent < len(payload):
                self.close_connection = True
            return 200
        raise AssertionError(mode)


def hostile_status(rule):
    """The status a hostile answer starts with (known before it is sent)."""
    return int(rule.get("status", 302)) if rule["mode"] == "redirect" else 200


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr, state, ssl_ctx, quiet):
        self.state = state
        self.ssl_ctx = ssl_ctx
        self.scheme = "https" if ssl_ctx else "http"
        self.quiet = quiet
        self._conn_lock = threading.Lock()
        self._conn_seq = 0
        super().__init__(addr, Handler)

    def next_conn_id(self):
        with self._conn_lock:
            self._conn_seq += 1
            return self._conn_seq

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ssl.SSLError, ConnectionError, TimeoutError, socket.timeout, OSError)):
            if not self.quiet:
                sys.stderr.write("kcstub: connection from %s ended: %s\n" % (client_address[0], exc))
            return
        super().handle_error(request, client_address)


def env_default(*names, default=None):
    for name in names:
        val = os.environ.get(name)
        if val:
            return val
    return default


def main(argv=None):
    ap = argparse.ArgumentParser(description="Keycloak 26 stand-in for tests")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--port-file", help="write the chosen port here once listening")
    ap.add_argument("--tls-cert", help="PEM certificate chain; serve HTTPS only")
    ap.add_argument("--tls-key", help="PEM private key for --tls-cert")
    ap.add_argument("--admin-user",
                    default=env_default("KC_BOOTSTRAP_ADMIN_USERNAME", "KEYCLOAK_ADMIN", default="admin"))
    ap.add_argument("--admin-password",
                    default=env_default("KC_BOOTSTRAP_ADMIN_PASSWORD", "KEYCLOAK_ADMIN_PASSWORD",
                                        default="admin"))
    ap.add_argument("--token-lifespan", type=int, default=60, help="master access token lifespan, seconds")
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)

    if bool(args.tls_cert) != bool(args.tls_key):
        ap.error("--tls-cert and --tls-key go together")
    if args.token_lifespan < 1:
        ap.error("--token-lifespan must be >= 1")
    ssl_ctx = None
    if args.tls_cert:
        ssl_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ssl_ctx.load_cert_chain(args.tls_cert, args.tls_key)

    state = State(args.admin_user, args.admin_password, args.token_lifespan, args.latency_ms)
    httpd = Server((args.bind, args.port), state, ssl_ctx, args.quiet)
    port = httpd.server_address[1]
    if args.port_file:
        tmp = "%s.tmp.%d" % (args.port_file, os.getpid())
        with open(tmp, "w") as fh:
            fh.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    sys.stderr.write("listening on %d\n" % port)
    sys.stderr.flush()

    def stop(signum, frame):
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
