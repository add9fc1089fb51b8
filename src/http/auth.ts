import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';

import type { FastifyRequest } from 'fastify';

import type { ApiRole, TaskqConfig } from '../config/types.js';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { ApiError } from './errors.js';

/** Who is calling: an admin or a user token, or nobody on a server without tokens. */
export interface Principal {
  /** `reader`: a server without tokens, on loopback, lets anyone there read and nothing more. */
  role: ApiRole | 'reader';
  /** The token's owner; null for a reader. */
  owner: string | null;
}

/** What a route lets through: reads, changes to the caller's own tasks, or admin actions. */
export type Access = 'read' | 'write' | 'admin';

interface ApiToken {
  digest: Buffer;
  owner: string;
  role: ApiRole;
}

/**
 * The tokens of the configuration, read from their variables, and the check of the address:
 * a server with no token must not listen beyond loopback. Throws a ConfigError naming the
 * setting to fix.
 */
export class TokenSet {
  private constructor(private readonly tokens: ApiToken[]) {}

  static fromConfig(config: TaskqConfig, env: NodeJS.ProcessEnv = process.env): TokenSet {
    const problems: ConfigProblem[] = [];
    const tokens: ApiToken[] = [];
    config.http.tokens.forEach((entry, index) => {
      const secret = entry.token ?? (entry.tokenEnv ? env[entry.tokenEnv] : undefined);
      if (!secret || secret.length < 16) {
        problems.push({
          path: `http.tokens[${index}].tokenEnv`,
          message: `names ${entry.tokenEnv}, which is ${secret ? 'shorter than 16 characters' : 'not set'}; export a secret of at least 16 characters in it`,
        });
        return;
      }
      tokens.push({ digest: digest(secret), owner: entry.owner, role: entry.role });
    });
    if (tokens.length === 0 && problems.length === 0 && !isLoopback(config.http.host)) {
      problems.push({
        path: 'http.tokens',
        message:
          `is empty while http.host is ${config.http.host}, beyond loopback: the API would be open ` +
          'to the network. Add a token (http.tokens) or listen on 127.0.0.1',
      });
    }
    if (problems.length > 0) throw new ConfigError(config.source, problems);
    return new TokenSet(tokens);
  }

  get configured(): boolean {
    return this.tokens.length > 0;
  }

  /**
   * The caller of a request. Every token is compared, in constant time on digests of equal
   * length, so that neither the time taken nor the order of the tokens tells a secret apart.
   */
  principal(request: FastifyRequest): Principal {
    if (!this.configured) return { role: 'reader', owner: null };
    const header = request.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match)
      throw new ApiError(
        401,
        'UNAUTHORIZED',
        'This API needs a bearer token: Authorization: Bearer <token>',
      );
    const given = digest(match[1]!);
    let found: ApiToken | null = null;
    for (const token of this.tokens) if (timingSafeEqual(token.digest, given)) found ??= token;
    if (!found)
      throw new ApiError(401, 'UNAUTHORIZED', 'The bearer token is not one of http.tokens');
    return { role: found.role, owner: found.owner };
  }
}

/** Refuses a caller whose role does not reach `access`. */
export function authorize(principal: Principal, access: Access): void {
  if (access === 'read' || principal.role === 'admin') return;
  if (principal.role === 'reader') {
    throw new ApiError(
      403,
      'FORBIDDEN',
      'Changes need a bearer token, and this server has none: add one to http.tokens in the configuration',
    );
  }
  if (access === 'admin')
    throw new ApiError(403, 'FORBIDDEN', 'Only an admin token may do this', {
      role: principal.role,
    });
}

/** The owner a caller is limited to: a user token sees its own tasks only. */
export function ownerScope(principal: Principal): string | undefined {
  return principal.role === 'user' ? principal.owner! : undefined;
}

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '0:0:0:0:0:0:0:1';
}
