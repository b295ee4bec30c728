// The account page and the operator's console (web/, built by `npm run build` into dist/web): static files served
// at /app/ by this same process. The files are read once at start and answered from memory with a strict
// Content-Security-Policy: scripts, styles and requests only from this origin, no inline script or style, no
// framing. The page reads and changes everything through the JSON API, like any other client.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';

/** The policy of every /app/ response. `style-src 'self'` still lets scripts set element.style (uPlot does). */
export const webAppCsp = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const securityHeaders = {
  'Content-Security-Policy': webAppCsp,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
} as const;

const types: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
};

interface WebFile {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

/** dist/web beside package.json, from src/api/ under tsx and from dist/src/api/ when built. */
export function defaultWebAppDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const up of ['../..', '../../..']) {
    const root = path.resolve(here, up);
    if (existsSync(path.join(root, 'package.json'))) return path.join(root, 'dist', 'web');
  }
  return path.resolve(here, '../../dist/web');
}

/** Every file under `dir` by its path relative to it ('/'-separated); empty when the directory does not exist. */
function readTree(dir: string, prefix = ''): Map<string, WebFile> {
  const files = new Map<string, WebFile>();
  if (!existsSync(dir)) return files;
  for (const name of readdirSync(dir)) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) {
      for (const [rel, f] of readTree(full, `${prefix}${name}/`)) files.set(rel, f);
      continue;
    }
    const body = readFileSync(full);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    files.set(prefix + name, { body, type: types[path.extname(name)] ?? 'application/octet-stream', etag });
  }
  return files;
}

export function registerWebApp(http: FastifyInstance, opts: { dir: string }): void {
  const files = readTree(opts.dir);

  function send(reply: FastifyReply, file: WebFile | undefined, ifNoneMatch: string | undefined): FastifyReply {
    reply.headers(securityHeaders);
    if (!file) {
      if (files.size > 0) return reply.code(404).type('text/plain; charset=utf-8').send('no such file\n');
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send(`the web app is not built: run npm run build (looked in ${opts.dir})\n`);
    }
    // Names carry no content hash, so the browser asks again each time and gets a 304 while nothing changed.
    reply.header('Cache-Control', 'no-cache').header('ETag', file.etag);
    if (ifNoneMatch === file.etag) return reply.code(304).send();
    return reply.type(file.type).send(file.body);
  }

  const doc = (summary: string) => ({ schema: { tags: ['web'], summary } });
  http.get('/app', doc('Redirects to /app/'), async (_req, reply) =>
    reply.headers(securityHeaders).redirect('/app/', 301),
  );
  http.get(
    '/app/',
    doc('The account page and operator console (HTML; sign in with a NIP-07 signer)'),
    async (req, reply) => send(reply, files.get('index.html'), req.headers['if-none-match']),
  );
  http.get<{ Params: { '*': string } }>('/app/*', doc("The page's scripts and styles"), async (req, reply) =>
    send(reply, files.get(req.params['*']), req.headers['if-none-match']),
  );
}
