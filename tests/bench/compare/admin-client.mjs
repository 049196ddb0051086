// admin-client.mjs - a realm for a CI run with the official Keycloak admin
// client (@keycloak/keycloak-admin-client), the library Keycloak itself
// publishes. The side-by-side benchmark's "library" contender.
//
//   KC_URL=http://127.0.0.1:8080 KC_ADMIN_PASSWORD=... REALM=myapp-0a6fb2 \
//   CLIENT_ID=myapp TEST_USER=test-user TEST_PASSWORD=... \
//   node admin-client.mjs [command [args...]]
//
// Calls: admin token; create realm; create client (its id comes back in
// the Location header); read its secret; create user; set the password;
// delete the realm. The command runs with the same DEPS_KEYCLOAK_*
// variables drone-deps gives a hook; the realm is deleted whatever it does.
import { spawnSync } from "node:child_process";
import KcAdminClient from "@keycloak/keycloak-admin-client";

const env = (name, def) => {
  const v = process.env[name] ?? def;
  if (v === undefined) throw new Error(`${name} is required`);
  return v;
};
const url = env("KC_URL");
const realm = env("REALM");
const clientId = env("CLIENT_ID");
const username = env("TEST_USER");
const password = env("TEST_PASSWORD");

const kc = new KcAdminClient({ baseUrl: url, realmName: "master" });
await kc.auth({
  grantType: "password",
  clientId: "admin-cli",
  username: env("KC_ADMIN_USER", "admin"),
  password: env("KC_ADMIN_PASSWORD"),
});
await kc.realms.create({ realm, enabled: true });
let status = 0;
try {
  kc.setConfig({ realmName: realm });
  const { id } = await kc.clients.create({
    clientId,
    enabled: true,
    publicClient: false,
    standardFlowEnabled: true,
    directAccessGrantsEnabled: true,
    redirectUris: ["*"],
  });
  const { value: secret } = await kc.clients.getClientSecret({ id });
  const user = await kc.users.create({
    username,
    enabled: true,
    email: `${username}@example.org`,
    emailVerified: true,
    firstName: "Test",
    lastName: "User",
  });
  await kc.users.resetPassword({
    id: user.id,
    credential: { type: "password", value: password, temporary: false },
  });
  const argv = process.argv.slice(2);
  if (argv.length > 0) {
    const r = spawnSync(argv[0], argv.slice(1), {
      stdio: "inherit",
      env: {
        ...process.env,
        DEPS_KEYCLOAK_URL: url,
        DEPS_KEYCLOAK_REALM: realm,
        DEPS_KEYCLOAK_ISSUER: `${url}/realms/${realm}`,
        DEPS_KEYCLOAK_CLIENT_ID: clientId,
        DEPS_KEYCLOAK_CLIENT_SECRET: secret,
        DEPS_KEYCLOAK_USERNAME: username,
        DEPS_KEYCLOAK_PASSWORD: password,
      },
    });
    status = r.status ?? 128 + 1;
  }
} finally {
  kc.setConfig({ realmName: "master" });
  await kc.realms.del({ realm });
}
process.exitCode = status;
