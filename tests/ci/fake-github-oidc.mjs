// A stand-in for GitHub's OIDC token service, on loopback, for
// crates/cli/tests/ci_action.rs: publishes a discovery document and key set
// (RSA, made fresh at start) and answers the job's token request
// (`GET /token?audience=A` with `Authorization: bearer <request token>`)
// with `{"value": <RS256 JWT>}` carrying GitHub's claim names.
// Prints `listening on http://127.0.0.1:PORT` once ready.
import { createServer } from 'node:http';
import { generateKeyPairSync, createSign, randomUUID } from 'node:crypto';

const requestToken = process.argv[2] ?? 'request-token';
const claims = JSON.parse(process.argv[3] ?? '{}');
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'gha-1', use: 'sig', alg: 'RS256' };
const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

let base = '';
const server = createServer((req, res) => {
  const url = new URL(req.url, base);
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (url.pathname === '/.well-known/openid-configuration') {
    return send(200, { issuer: base, jwks_uri: `${base}/jwks`, authorization_endpoint: `${base}/auth` });
  }
  if (url.pathname === '/jwks') return send(200, { keys: [jwk] });
  if (url.pathname === '/token') {
    if (req.headers.authorization !== `bearer ${requestToken}`) return send(401, { message: 'bad request token' });
    const now = Math.floor(Date.now() / 1000);
    const payload = {
      iss: base, aud: url.searchParams.get('audience'), sub: 'repo:acme/deploy:ref:refs/heads/main',
      iat: now, nbf: now, exp: now + 300, jti: randomUUID(),
      repository: 'acme/deploy', repository_owner: 'acme', ref: 'refs/heads/main', workflow: 'deploy', run_id: '1',
      ...claims,
    };
    const head = b64({ alg: 'RS256', typ: 'JWT', kid: 'gha-1' });
    const body = b64(payload);
    const signature = createSign('RSA-SHA256').update(`${head}.${body}`).sign(privateKey).toString('base64url');
    return send(200, { count: 1, value: `${head}.${body}.${signature}` });
  }
  send(404, { message: 'not found' });
});
server.listen(0, '127.0.0.1', () => {
  base = `http://127.0.0.1:${server.address().port}`;
  console.log(`listening on ${base}`);
});
