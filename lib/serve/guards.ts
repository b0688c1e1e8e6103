/**
 * Who may talk to the playground (docs/playground.md, "Access"):
 *  - the Host header must name this server: one of --allowed-host, or a loopback name when it
 *    listens on loopback (or on every address). Checked on every request, whatever the bind: a
 *    DNS-rebinding page's Host is its own domain, and its Origin matches that Host;
 *  - a state-changing request from another origin is refused;
 *  - /api/ and the result pages need the server's access token: printed once at start as
 *    `/?token=...`; the first visit with it gets a session cookie (HttpOnly, SameSite=Strict) and
 *    is redirected to the same address without the token; scripts send `Authorization: Bearer`;
 *  - the client a request comes from: its session (one per cookie), else 'token' (scripts with
 *    the bearer token) or 'anonymous' (--no-token, without a cookie). Jobs and uploads belong to
 *    the client that made them; others get 404.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { RobustSynthError } from '../errors.js';
import { httpError } from './http-errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The client the request comes from (set by the guards on /api/ and /jobs/). */
    client: string;
  }
}

/** 32 random bytes, base64url: access tokens, session ids. */
export function secret(): string {
  return randomBytes(32).toString('base64url');
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

/** The name in a Host header (lower case, no port, no brackets, no trailing dot); '' when malformed. */
export function hostnameOf(header: string | undefined): string {
  if (!header) return '';
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]]+)(?::\d{1,5})?$/.exec(header.trim());
  if (!m) return '';
  return m[1]!.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
}

export interface GuardOptions {
  /** The address the server binds. */
  host: string;
  /** Host names (or addresses) clients may use; required for a non-loopback bind. */
  allowedHosts: readonly string[];
  /** false: no token (loopback binds only). */
  token: boolean;
}

/** Most sessions kept; the oldest go first (a session is a few bytes, but token holders can open any number). */
const MAX_SESSIONS = 10_000;

export class Access {
  readonly token: string | undefined;
  readonly allowed: ReadonlySet<string>;
  readonly loopbackNames: boolean;
  readonly #sessions = new Set<string>();
  /** The cookie's name; it carries the port, as two servers on one machine share the browser's cookies for it. */
  cookieName = 'rs_session';

  constructor(options: GuardOptions) {
    const loopback = isLoopback(options.host);
    if (!loopback && options.allowedHosts.length === 0) {
      throw new RobustSynthError(
        'ERR_BAD_INPUT',
        `listening on ${options.host} (not loopback) needs the host names clients will use: --allowed-host NAME (repeatable), e.g. --allowed-host ${isWildcard(options.host) ? 'my-machine.lan' : options.host}`,
      );
    }
    if (!options.token && !loopback) throw new RobustSynthError('ERR_BAD_INPUT', `--no-token is for loopback binds only; ${options.host} is not loopback`);
    const allowed = options.allowedHosts.map((h) => {
      const name = hostnameOf(h);
      if (!name || /[/\s]/.test(h)) throw new RobustSynthError('ERR_BAD_INPUT', `--allowed-host must be a host name or an address, got '${h}'`);
      return name;
    });
    this.allowed = new Set(allowed);
    this.loopbackNames = loopback || isWildcard(options.host);
    this.token = options.token ? secret() : undefined;
  }

  hostAllowed(header: string | undefined): boolean {
    const name = hostnameOf(header);
    return name !== '' && (this.allowed.has(name) || (this.loopbackNames && isLoopback(name)));
  }

  tokenMatches(given: string | undefined): boolean {
    if (this.token === undefined || given === undefined) return false;
    const a = Buffer.from(given);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  newSession(): string {
    const id = secret();
    this.#sessions.add(id);
    for (const old of this.#sessions) {
      if (this.#sessions.size <= MAX_SESSIONS) break;
      this.#sessions.delete(old);
    }
    return id;
  }

  sessionOf(req: FastifyRequest): string | undefined {
    const id = cookie(req.headers.cookie, this.cookieName);
    return id !== undefined && this.#sessions.has(id) ? id : undefined;
  }

  /** The client a request comes from, or undefined when it may not use the API. */
  clientOf(req: FastifyRequest): string | undefined {
    const session = this.sessionOf(req);
    if (session) return `session:${session}`;
    const auth = req.headers.authorization;
    if (typeof auth === 'string' && /^Bearer /i.test(auth) && this.tokenMatches(auth.slice(7).trim())) return 'token';
    return this.token === undefined ? 'anonymous' : undefined;
  }

  setCookie(reply: FastifyReply, session: string): void {
    void reply.header('set-cookie', `${this.cookieName}=${session}; Path=/; HttpOnly; SameSite=Strict`);
  }
}

/** A cookie's value from a Cookie header. */
export function cookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return undefined;
}

/** The page's own files, served to anyone who may reach the server; every other path needs a client. */
const PUBLIC = new Set(['/', '/index.html', '/app.js', '/style.css', '/favicon.ico']);

export function installGuards(app: FastifyInstance, access: Access): void {
  app.decorateRequest('client', '');
  app.addHook('onRequest', async (req, reply) => {
    const hostHeader = req.headers.host;
    if (!access.hostAllowed(hostHeader)) {
      throw httpError(403, 'ERR_BAD_INPUT', `Host '${String(hostHeader ?? '').slice(0, 100)}' is not a name this server answers to; open the address robust-synth serve printed`);
    }
    const origin = req.headers.origin;
    if (req.method !== 'GET' && req.method !== 'HEAD' && origin !== undefined) {
      let same = false;
      try {
        same = new URL(origin).host === hostHeader;
      } catch {
        same = false;
      }
      if (!same) throw httpError(403, 'ERR_BAD_INPUT', 'requests from another origin are refused: the playground takes requests from its own page only');
    }
    const q = req.url.indexOf('?');
    const path = q < 0 ? req.url : req.url.slice(0, q);
    const query = new URLSearchParams(q < 0 ? '' : req.url.slice(q + 1));
    const given = query.get('token');
    if (given !== null && (req.method === 'GET' || req.method === 'HEAD')) {
      if (!access.tokenMatches(given)) throw httpError(401, 'ERR_BAD_INPUT', 'the access token is wrong; open the address robust-synth serve printed');
      access.setCookie(reply, access.sessionOf(req) ?? access.newSession());
      query.delete('token');
      const rest = query.toString();
      // Back to the same page without the token (only a path of ours: never another site).
      const location = (path.startsWith('/') && !path.startsWith('//') ? path : '/') + (rest ? `?${rest}` : '');
      return reply.code(303).header('location', location).header('cache-control', 'no-store').send();
    }
    const open = PUBLIC.has(path);
    if (access.token === undefined && open && !access.sessionOf(req)) {
      // --no-token: a page load gets a session of its own, so its jobs are its own.
      access.setCookie(reply, access.newSession());
    }
    if (open) return;
    const client = access.clientOf(req);
    if (client === undefined) {
      throw httpError(401, 'ERR_BAD_INPUT', 'this server needs its access token: open the address robust-synth serve printed (…/?token=...), or send Authorization: Bearer TOKEN');
    }
    req.client = client;
  });
}
