import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { FastifyInstance, FastifyReply } from 'fastify';

/**
 * The web page's files, served from the repository's supervisor/web as they are: plain HTML,
 * CSS and JavaScript modules, no build step. From dist/supervisor/ the directory is two levels
 * up, which also holds for an installed package (package.json's "files" ships it).
 */
export const WEB_DIR = fileURLToPath(new URL('../../supervisor/web/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

interface WebFile {
  body: Buffer;
  type: string;
  etag: string;
}

/** Reads the page's files once; a file the server does not list is never served. */
export function readWebFiles(dir = WEB_DIR): Map<string, WebFile> {
  const files = new Map<string, WebFile>();
  for (const name of readdirSync(dir)) {
    const type = TYPES[path.extname(name)];
    if (!type) continue;
    const body = readFileSync(path.join(dir, name));
    const etag = `"${createHash('sha1').update(body).digest('base64url').slice(0, 16)}"`;
    files.set(name, { body, type, etag });
  }
  return files;
}

/** GET / and GET /ui/<file>: the page needs no token; the API it calls does. */
export function webPageRoutes(app: FastifyInstance): void {
  const files = readWebFiles();
  app.get('/', async (request, reply) =>
    serve(reply, files.get('index.html'), request.headers['if-none-match']),
  );
  app.get<{ Params: { file: string } }>('/ui/:file', async (request, reply) =>
    serve(reply, files.get(request.params.file), request.headers['if-none-match']),
  );
}

function serve(reply: FastifyReply, file: WebFile | undefined, ifNoneMatch: string | undefined) {
  reply.headers(SECURITY_HEADERS);
  if (!file) return reply.code(404).type('text/plain; charset=utf-8').send('Not found');
  reply.header('etag', file.etag).header('cache-control', 'no-cache');
  if (ifNoneMatch === file.etag) return reply.code(304).send();
  return reply.type(file.type).send(file.body);
}
