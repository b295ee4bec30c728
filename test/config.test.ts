// Configuration: defaults, parsing, a clear error naming the key for every bad value, and the README table
// listing every key (so the documentation cannot fall behind the code).
import { readFileSync } from 'node:fs';
import t from 'tap';
import { ConfigError, configKeys, loadConfig, relayUrl, verifyThreadsOf, withPort } from '../src/config.js';

t.test('defaults give the embedded mode on 127.0.0.1:7447', async (t) => {
  const c = loadConfig({});
  t.equal(c.databaseUrl, '');
  t.equal(c.dataDir, './data');
  t.equal(c.redisUrl, '');
  t.equal(c.host, '127.0.0.1');
  t.equal(c.port, 7447);
  t.equal(c.publicUrl, 'http://localhost:7447');
  t.equal(relayUrl(c), 'ws://localhost:7447/');
  t.same(c.upstreamRelays, []);
  t.equal(c.allowPrivateRelays, false);
  t.same(c.postKinds, [1, 6, 16, 30023]);
});

t.test('values are parsed', async (t) => {
  const pk = 'a'.repeat(64);
  const c = loadConfig({
    PORT: '8080',
    PUBLIC_URL: 'https://relay.example.com/',
    UPSTREAM_RELAYS: 'wss://a.example, ws://b.example:7000',
    ALLOW_PRIVATE_RELAYS: 'true',
    ADMIN_PUBKEYS: pk,
    POST_KINDS: '1,30023',
  });
  t.equal(c.port, 8080);
  t.equal(c.publicUrl, 'https://relay.example.com', 'trailing slash removed');
  t.equal(relayUrl(c), 'wss://relay.example.com/');
  t.same(c.upstreamRelays, ['wss://a.example', 'ws://b.example:7000']);
  t.equal(c.allowPrivateRelays, true);
  t.same(c.adminPubkeys, [pk]);
  t.same(c.postKinds, [1, 30023]);
});

t.test('PORT=0 leaves PUBLIC_URL to be filled in once the port is known', async (t) => {
  const c = loadConfig({ PORT: '0' });
  t.equal(c.publicUrl, '');
  t.equal(withPort(c, 4321).publicUrl, 'http://localhost:4321');
  t.equal(withPort(loadConfig({ PORT: '0', PUBLIC_URL: 'https://x.example' }), 4321).publicUrl, 'https://x.example');
});

t.test('a bad value is refused with a message naming the key', async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ PORT: 'eighty' }, /^PORT must be an integer between 0 and 65535, got "eighty"$/],
    [{ PORT: '70000' }, /^PORT must be an integer/],
    [{ PUBLIC_URL: 'relay.example.com' }, /^PUBLIC_URL must be an absolute http\(s\) URL/],
    [{ PUBLIC_URL: 'ftp://relay.example.com' }, /^PUBLIC_URL must use http:\/\/ or https:\/\//],
    [{ UPSTREAM_RELAYS: 'https://relay.example.com' }, /^UPSTREAM_RELAYS URLs must use ws:\/\/ or wss:\/\//],
    [{ UPSTREAM_RELAYS: 'not a url' }, /^UPSTREAM_RELAYS has an invalid URL/],
    [{ ALLOW_PRIVATE_RELAYS: 'maybe' }, /^ALLOW_PRIVATE_RELAYS must be true or false/],
    [{ ADMIN_PUBKEYS: 'npub1xyz' }, /^ADMIN_PUBKEYS must list 64-char lowercase hex pubkeys/],
    [{ LOG_LEVEL: 'loud' }, /^LOG_LEVEL must be one of/],
    [{ POST_KINDS: '1,x' }, /^POST_KINDS must be an integer/],
    [
      { SMTP_URL: 'http://user:secret@mail.example', MAIL_FROM: 'a@b.example' },
      /^SMTP_URL must use smtp:\/\/ or smtps:\/\/, got http:\/\/$/,
    ],
    [{ SMTP_URL: 'smtp://mail.example' }, /^MAIL_FROM is required with SMTP_URL/],
    [{ MAX_IDENTITIES: '0' }, /^MAX_IDENTITIES must be an integer between 1 and 100/],
  ];
  for (const [env, message] of cases) {
    t.throws(() => loadConfig(env), { name: 'ConfigError', message }, JSON.stringify(env));
  }
  t.ok(new ConfigError('x') instanceof Error);
});

t.test('VERIFY_THREADS: a number is taken as is; -1 shares the cores among WORKERS, at least one each', async (t) => {
  t.equal(verifyThreadsOf(loadConfig({ VERIFY_THREADS: '0' }), 8), 0);
  t.equal(verifyThreadsOf(loadConfig({ VERIFY_THREADS: '3' }), 8), 3);
  t.equal(verifyThreadsOf(loadConfig({}), 8), 8);
  t.equal(verifyThreadsOf(loadConfig({ WORKERS: '3' }), 8), 2);
  t.equal(verifyThreadsOf(loadConfig({ WORKERS: '4' }), 2), 1);
  t.throws(() => loadConfig({ VERIFY_THREADS: '-2' }), ConfigError);
});

t.test('the README documents every configuration key', async (t) => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  for (const key of configKeys)
    t.match(readme, new RegExp(`\\| \`${key.env}\` \\|`), `${key.env} is in the README table`);
});
