/**
 * Redis connections for the queue: a redis:// or rediss:// URL read into ioredis options
 * (password, TLS, database), and a connectivity check that fails fast with a clear reason:
 * RobustSynthError ERR_REDIS (Redis unreachable or refusing us, exit 1) or ERR_BAD_INPUT (a bad
 * URL, a refused password, exit 2).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { RobustSynthError } from '../errors.js';

export interface RedisConfig {
  /** redis://[user:password@]host[:port][/db] or rediss://... (TLS). */
  url: string;
  /** Overrides the URL's password (so that it need not appear in a process list). */
  password?: string;
  /** PEM file of the CA that signed the server's certificate (rediss://), added to the system's. */
  tlsCa?: string;
  /** rediss:// without verifying the server's certificate (testing only). */
  tlsInsecure?: boolean;
}

/** Environment variables the commands read: the URL when --redis is absent, and the password. */
export const REDIS_URL_ENV = 'ROBUST_SYNTH_REDIS';
export const REDIS_PASSWORD_ENV = 'ROBUST_SYNTH_REDIS_PASSWORD';

/** The ioredis options a URL gives. Retries forever, so that a Redis restart is ridden out. */
export function redisOptions(config: RedisConfig): RedisOptions {
  let u: URL;
  try {
    u = new URL(config.url);
  } catch {
    throw new RobustSynthError('ERR_BAD_INPUT', `--redis must be a redis:// or rediss:// URL, got '${redact(config.url)}'`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') {
    throw new RobustSynthError('ERR_BAD_INPUT', `--redis must be a redis:// or rediss:// URL, got '${redact(config.url)}'`);
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
  const port = u.port === '' ? 6379 : Number(u.port);
  const dbText = u.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^\d+$/.test(dbText)) throw new RobustSynthError('ERR_BAD_INPUT', `--redis: the database must be a number (/0, /1, ...), got '/${dbText}'`);
  const options: RedisOptions = {
    host,
    port,
    db: dbText === '' ? 0 : Number(dbText),
    // BullMQ's workers need null (their blocking commands must not fail after N retries), and
    // it lets every command wait through a Redis restart instead of failing.
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(100 * times, 2000),
    connectTimeout: 10_000,
  };
  if (u.username) options.username = decodeURIComponent(u.username);
  const password = config.password ?? (u.password ? decodeURIComponent(u.password) : undefined);
  if (password !== undefined && password !== '') options.password = password;
  if (u.protocol === 'rediss:') {
    options.tls = {
      ...(isIP(host) ? {} : { servername: host }),
      ...(config.tlsCa ? { ca: readFileSync(config.tlsCa) } : {}),
      ...(config.tlsInsecure ? { rejectUnauthorized: false } : {}),
    };
  }
  return options;
}

/** The URL with its password replaced by ***, for messages. */
export function redact(url: string): string {
  return url.replace(/^(rediss?:\/\/[^:/@]*:)[^@]*@/, '$1***@');
}

/** A client for our own keys (heartbeats, locks). It must have an error listener: ioredis emits one per failed reconnect. */
export function createClient(options: RedisOptions, onError?: (e: Error) => void): Redis {
  const client = new Redis({ ...options, lazyConnect: false });
  client.on('error', onError ?? (() => {}));
  return client;
}

/**
 * Connects once, without retries, and pings: a wrong password or an unreachable server is
 * reported now, in words, rather than retried forever by the long-lived connections.
 */
export async function checkRedis(options: RedisOptions, url: string): Promise<{ version: string }> {
  const client = new Redis({ ...options, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  // The reason (refused password, connection refused) arrives as an 'error' event; the promise
  // itself often rejects with a bare "Connection is closed".
  let reason: Error | undefined;
  client.on('error', (e: Error) => (reason ??= e));
  try {
    await client.connect();
    await client.ping();
    const info = await client.info('server');
    return { version: /redis_version:(\S+)/.exec(info)?.[1] ?? '?' };
  } catch (e) {
    const msg = (reason ?? (e as Error)).message ?? String(e);
    if (/NOAUTH/.test(msg)) {
      throw new RobustSynthError('ERR_BAD_INPUT', `Redis at ${redact(url)} requires a password: give it in the URL (redis://:PASSWORD@host:port) or in ${REDIS_PASSWORD_ENV}`, { cause: e });
    }
    if (/WRONGPASS|invalid password|invalid username-password/i.test(msg)) {
      throw new RobustSynthError('ERR_BAD_INPUT', `Redis at ${redact(url)} refused the credentials (${msg.trim()}); give the password in the URL or in ${REDIS_PASSWORD_ENV}`, { cause: e });
    }
    throw new RobustSynthError('ERR_REDIS', `cannot reach Redis at ${redact(url)}: ${msg.trim()}`, { cause: e });
  } finally {
    client.disconnect();
  }
}

/** The same options, typed for BullMQ (whose RedisOptions type is narrower than ioredis's, not different). */
export function bullConnection(options: RedisOptions): ConnectionOptions {
  return options as ConnectionOptions;
}
