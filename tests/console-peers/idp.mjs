// A real OpenID provider (npm `oidc-provider`) for the console's end-to-end
// tests, on loopback only. Usage: node idp.mjs <gateway-url>
//
// - clients: `countersign` (the console; code flow with PKCE, RP-initiated
//   logout) and `other-app` (a different audience, to prove its tokens are
//   refused);
// - users: alice (sre), bob (sre; owns the test agent), carol (sre, auditor,
//   admin), each with email, name and a `groups` claim; root and the
//   mallory-* accounts for the email-matching tests (see USERS); the login
//   form is oidc-provider's development interaction (any password);
// - `POST /__test/rotate`: replaces the signing key with a new one (new
//   `kid`), as a provider rotating its keys would;
// - `POST /__test/groups?user=<name>&groups=<a,b>`: changes a user's
//   groups from the next login on, as a directory change would;
// - grant `urn:countersign:test:id-token`: the provider issues a signed ID
//   token for a named user to an authenticated client, so the tests get
//   real provider-signed JWTs without a browser.
//
// Prints one JSON line `{"issuer": "..."}` once it listens.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const gateway = (process.argv[2] || '').replace(/\/$/, '');
if (!gateway.startsWith('http://127.0.0.1:')) {
  console.error('usage: node idp.mjs http://127.0.0.1:<gateway port>');
  process.exit(2);
}

// `verified` is what the provider says in `email_verified` (default `true`;
// `null` leaves the claim out); `upn` is an extra claim for tests of a
// custom `email_claim`. The `root`/`mallory-*` accounts all carry the
// address of a local admin (`root@example.com`): only `root` is its owner.
const USERS = {
  alice: { email: 'alice@example.com', name: 'Alice Approver', groups: ['sre'] },
  bob: { email: 'bob@example.com', name: 'Bob Owner', groups: ['sre'] },
  carol: { email: 'carol@example.com', name: 'Carol Auditor', groups: ['sre', 'auditor', 'admin'] },
  root: { email: 'root@example.com', name: 'Root Admin', groups: ['admin'], upn: 'root@example.com' },
  'mallory-string': { email: 'root@example.com', verified: 'false', name: 'Mallory', groups: ['admin', 'sre'] },
  'mallory-string-true': { email: 'root@example.com', verified: 'true', name: 'Mallory', groups: ['admin', 'sre'] },
  'mallory-absent': { email: 'root@example.com', verified: null, name: 'Mallory', groups: ['admin', 'sre'] },
  'mallory-verified': { email: 'root@example.com', name: 'Mallory', groups: ['admin', 'sre'] },
  'mallory-upn': { email: 'mallory@example.com', upn: 'root@example.com', name: 'Mallory', groups: ['admin', 'sre'] },
};

function claimsOf(sub, user) {
  const claims = { sub, email: user.email, name: user.name, groups: user.groups };
  const verified = 'verified' in user ? user.verified : true;
  if (verified !== null) claims.email_verified = verified;
  if (user.upn) claims.upn = user.upn;
  return claims;
}

function newKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `test-${crypto.randomBytes(6).toString('hex')}`, use: 'sig', alg: 'RS256' };
}

const GRANT = 'urn:countersign:test:id-token';

function makeProvider(issuer, key) {
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'countersign',
        client_secret: 'console-secret',
        redirect_uris: [`${gateway}/console/callback`],
        post_logout_redirect_uris: [`${gateway}/console/login?logged_out=1`],
        grant_types: ['authorization_code', GRANT],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: 'other-app',
        client_secret: 'other-secret',
        redirect_uris: ['http://127.0.0.1:9/none'],
        grant_types: [GRANT],
        response_types: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [key] },
    cookies: { keys: ['countersign-test-cookie-key'] },
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name', 'upn'], groups: ['groups'] },
    async findAccount(ctx, sub) {
      const user = USERS[sub];
      if (!user) return undefined;
      return {
        accountId: sub,
        async claims() {
          return claimsOf(sub, user);
        },
      };
    },
    // Put the claims in the ID token (the console reads them there).
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
    },
    // First-party client: no consent screen.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        const existing = await ctx.oidc.provider.Grant.find(grantId);
        if (existing) return existing;
      }
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid email profile groups');
      grant.addOIDCClaims(['email', 'email_verified', 'name', 'upn', 'groups']);
      await grant.save();
      return grant;
    },
    ttl: { Session: 3600, Interaction: 600, Grant: 3600, AuthorizationCode: 60, AccessToken: 600, IdToken: 600 },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>error</title><h1>${out.error}</h1><p>${out.error_description || ''}</p>`;
    },
  });
  provider.proxy = false;
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  provider.on('grant.error', (ctx, err) => console.error('grant.error', err));
  provider.registerGrantType(GRANT, async (ctx) => {
    const username = ctx.oidc.params.username;
    const user = USERS[username];
    if (!user) throw new errors.InvalidGrant('unknown user');
    const token = new ctx.oidc.provider.IdToken(claimsOf(username, user), { ctx });
    token.scope = 'openid email profile groups';
    const idToken = await token.issue({ use: 'idtoken' });
    ctx.body = { id_token: idToken, token_type: 'Bearer' };

  }, ['username']);
  return provider;
}

let current;
let issuer;
const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/__test/rotate') {
    current = makeProvider(issuer, newKey());
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"rotated":true}');
    return;
  }
  if (req.method === 'POST' && req.url.startsWith('/__test/groups?')) {
    const query = new URL(req.url, issuer).searchParams;
    const user = USERS[query.get('user')];
    if (!user) {
      res.writeHead(404).end();
      return;
    }
    user.groups = (query.get('groups') || '').split(',').filter((g) => g);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ groups: user.groups }));
    return;
  }
  current.callback()(req, res);
});
server.listen(0, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  current = makeProvider(issuer, newKey());
  console.log(JSON.stringify({ issuer }));
});
process.on('SIGTERM', () => process.exit(0));
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
