// An OpenID Connect provider on loopback for moim's sign-in tests: `oidc-provider` (a certified
// implementation) with one client registered for moim, and beside it a few issuers that
// misbehave on purpose (an ID token for another audience, an expired one, one signed by a key
// the issuer never published, a rotated key, a wrong nonce or issuer, one issued an hour ago or
// an hour ahead, a broken token endpoint),
// each with its own discovery document, so moim's checks can be shown to refuse them.
//
// Prints `ready <provider-port> <rogue-port>` once listening, then reads one line from stdin:
// moim's base URL (http://127.0.0.1:PORT), the redirect URIs being `{base}/auth/{id}/callback`.
// Exits when stdin closes.
//
//   node e2e/oidc-provider.mjs <client-id> <client-secret>

import http from "node:http";
import readline from "node:readline";
import crypto from "node:crypto";
import Provider from "oidc-provider";
import * as jose from "jose";

const [clientId = "moim", clientSecret = "moim-secret"] = process.argv.slice(2);
const log = (...a) => process.stderr.write(a.join(" ") + "\n");

const providerServer = http.createServer();
const rogueServer = http.createServer();
await Promise.all([providerServer, rogueServer].map((s) => new Promise((r) => s.listen(0, "127.0.0.1", r))));
const pport = providerServer.address().port;
const rport = rogueServer.address().port;
// The provider is made once moim's address is known; requests before that wait for it (a server
// without a listener would leave them hanging).
/** @type {(h: any) => void} */
let ready;
const handler = new Promise((r) => { ready = r; });
providerServer.on("request", async (req, res) => (await handler)(req, res));

// ---- the misbehaving issuers --------------------------------------------------------------------

const published = await jose.generateKeyPair("RS256", { extractable: true });
const rotated = await jose.generateKeyPair("RS256", { extractable: true });
const unpublished = await jose.generateKeyPair("RS256", { extractable: true });
const jwk = async (pair, kid) => ({ ...(await jose.exportJWK(pair.publicKey)), kid, alg: "RS256", use: "sig" });
const keys = { a: await jwk(published, "a"), b: await jwk(rotated, "b") };
/** The `rotate` issuer publishes key a until its first token, then only b (and signs with b). */
let rotatedYet = false;

/** code → what the authorization request asked */
const codes = new Map();
const modes = ["wrong-aud", "expired", "unknown-key", "rotate", "wrong-nonce", "wrong-iss", "broken-token", "old-iat", "future-iat"];

/** @param {http.ServerResponse} res */
function json(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

rogueServer.on("request", async (req, res) => {
  const url = new URL(req.url, `http://127.0.0.1:${rport}`);
  const [, mode, ...rest] = url.pathname.split("/");
  const path = "/" + rest.join("/");
  if (!modes.includes(mode)) return json(res, 404, { error: "no such issuer" });
  const iss = `http://127.0.0.1:${rport}/${mode}`;
  if (path === "/.well-known/openid-configuration") {
    return json(res, 200, {
      issuer: iss,
      authorization_endpoint: `${iss}/authorize`,
      token_endpoint: `${iss}/token`,
      jwks_uri: `${iss}/jwks`,
      response_types_supported: ["code"],
      subject_types_supported: ["public"],
      id_token_signing_alg_values_supported: ["RS256"],
      token_endpoint_auth_methods_supported: ["client_secret_post"],
    });
  }
  if (path === "/jwks") {
    const list = mode === "rotate" ? [rotatedYet ? keys.b : keys.a] : [keys.a];
    return json(res, 200, { keys: list });
  }
  if (path === "/authorize") {
    // Signs in at once: the person is `rogue-<mode>`.
    const code = crypto.randomBytes(12).toString("hex");
    codes.set(code, { nonce: url.searchParams.get("nonce"), client: url.searchParams.get("client_id") });
    const back = new URL(url.searchParams.get("redirect_uri"));
    back.searchParams.set("code", code);
    back.searchParams.set("state", url.searchParams.get("state") || "");
    res.writeHead(302, { location: back.toString() });
    return res.end();
  }
  if (path === "/token" && req.method === "POST") {
    let body = "";
    for await (const chunk of req) body += chunk;
    const form = new URLSearchParams(body);
    const asked = codes.get(form.get("code") || "");
    codes.delete(form.get("code") || "");
    if (!asked) return json(res, 400, { error: "invalid_grant", error_description: "unknown code" });
    if (form.get("client_secret") !== clientSecret) return json(res, 401, { error: "invalid_client" });
    if (mode === "broken-token") {
      res.writeHead(500, { "content-type": "text/html" });
      return res.end("<h1>Internal Server Error</h1>");
    }
    const now = Math.floor(Date.now() / 1000);
    let key = published.privateKey, kid = "a";
    if (mode === "unknown-key") { key = unpublished.privateKey; kid = "z"; }
    if (mode === "rotate") {
      if (rotatedYet) { key = rotated.privateKey; kid = "b"; }
      rotatedYet = true;
    }
    const claims = {
      sub: `rogue-${mode}`,
      nonce: mode === "wrong-nonce" ? "not-the-nonce" : asked.nonce,
      name: `Rogue ${mode}`,
    };
    const idToken = await new jose.SignJWT(claims)
      .setProtectedHeader({ alg: "RS256", kid })
      .setIssuer(mode === "wrong-iss" ? "http://127.0.0.1:1/elsewhere" : iss)
      .setAudience(mode === "wrong-aud" ? "another-client" : asked.client)
      .setIssuedAt(mode === "expired" ? now - 7200 : mode === "old-iat" ? now - 3600 : mode === "future-iat" ? now + 3600 : now)
      .setExpirationTime(mode === "expired" ? now - 3600 : mode === "future-iat" ? now + 7200 : now + 300)
      .sign(key);
    return json(res, 200, { access_token: crypto.randomBytes(12).toString("hex"), token_type: "Bearer", expires_in: 300, id_token: idToken });
  }
  json(res, 404, { error: "not found" });
});

process.stdout.write(`ready ${pport} ${rport}\n`);

const rl = readline.createInterface({ input: process.stdin });
const lines = rl[Symbol.asyncIterator]();
const first = await lines.next();
const moim = String(first.value || "").trim();
rl.on("close", () => process.exit(0));
process.stdin.on("end", () => process.exit(0));

// ---- the real provider ------------------------------------------------------------------------

/** People who can sign in: any login name; a few have a nickname. */
const nicknames = { minji: "김민지", "kim-jun": "Kim Jun" };
const issuer = `http://127.0.0.1:${pport}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: ["test", "test2", "test3"].map((id) => `${moim}/auth/${id}/callback`),
    grant_types: ["authorization_code"],
    response_types: ["code"],
    token_endpoint_auth_method: "client_secret_basic",
  }],
  pkce: { required: () => true },
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name", "preferred_username"] },
  conformIdTokenClaims: false,
  cookies: { keys: [crypto.randomBytes(16).toString("hex")] },
  features: { devInteractions: { enabled: true } },
  async findAccount(_ctx, sub) {
    return {
      accountId: sub,
      async claims() {
        return {
          sub,
          email: `${sub}@example.test`,
          email_verified: !sub.startsWith("unverified"),
          name: nicknames[sub] || sub,
          preferred_username: nicknames[sub] || sub,
        };
      },
    };
  },
});
provider.on("server_error", (_ctx, err) => log("provider error:", err.stack || err));
const handle = provider.callback();
ready(handle);

log(`oidc provider ${issuer}, rogue issuers http://127.0.0.1:${rport}/{${modes.join(",")}}, moim ${moim}`);
