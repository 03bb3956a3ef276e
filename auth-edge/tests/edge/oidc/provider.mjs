// A real third-party OpenID provider for the edge's foreign-issuer tests: npm oauth2-mock-server
// (discovery, JWKS, RS256 tokens), started by tests/edge/issuers.rs on random loopback ports.
//
//   node provider.mjs NODE_MODULES TRUSTED_PORT UNTRUSTED_PORT CONTROL_PORT
//
// Two providers: the one the edge is told to trust, and another one it is not. The control port
// (test-only; the provider's own token endpoint needs a client flow the tests do not care about):
//   GET  /token?provider=trusted|untrusted&sub=..&aud=..[&sid=..][&roles=a,b]  -> a signed token
//   POST /rotate  -> the trusted provider signs with a new key from now on (published in its JWKS)
import http from 'node:http';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const [modules, trustedPort, untrustedPort, controlPort] = process.argv.slice(2);
// ESM ignores NODE_PATH: resolve the package from the test cache's node_modules explicitly.
const require = createRequire(`${modules}/`);
const { OAuth2Server } = await import(pathToFileURL(require.resolve('oauth2-mock-server')).href);

async function provider(port) {
  const server = new OAuth2Server();
  const key = await server.issuer.keys.generate('RS256');
  await server.start(Number(port), '127.0.0.1');
  // The issuer (and so discovery's issuer and jwks_uri) on the address it listens on.
  server.issuer.url = `http://127.0.0.1:${port}`;
  return { server, kid: key.kid };
}

const providers = {
  trusted: await provider(trustedPort),
  untrusted: await provider(untrustedPort),
};

const control = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://control');
    if (req.method === 'POST' && url.pathname === '/rotate') {
      const key = await providers.trusted.server.issuer.keys.generate('RS256');
      providers.trusted.kid = key.kid;
      res.end(key.kid);
      return;
    }
    if (req.method === 'GET' && url.pathname === '/token') {
      const p = providers[url.searchParams.get('provider') ?? 'trusted'];
      const q = url.searchParams;
      const token = await p.server.issuer.buildToken({
        kid: p.kid,
        scopesOrTransform: (_header, payload) => {
          payload.sub = q.get('sub');
          payload.aud = q.get('aud');
          if (q.has('sid')) payload.sid = q.get('sid');
          if (q.has('roles')) payload.roles = q.get('roles').split(',');
        },
      });
      res.end(token);
      return;
    }
    res.statusCode = 404;
    res.end();
  } catch (e) {
    res.statusCode = 500;
    res.end(String(e));
  }
});
control.listen(Number(controlPort), '127.0.0.1');

const stop = async () => {
  control.close();
  await Promise.all(Object.values(providers).map((p) => p.server.stop()));
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
