/** Command-line pieces the queue commands (worker, submit, collect, status) share: the Redis flags. */
import type { RedisOptions } from 'ioredis';
import type { OptionSpecs, Values } from './command.js';
import { RobustSynthError } from '../errors.js';
import { DEFAULT_QUEUE } from '../queue/jobs.js';
import { REDIS_PASSWORD_ENV, REDIS_URL_ENV, redisOptions } from '../queue/redis.js';

export const REDIS_FLAGS: OptionSpecs = {
  redis: { type: 'string', value: 'URL', description: `the Redis server: redis://[user:password@]host:port[/db], or rediss:// for TLS (default: $${REDIS_URL_ENV}; password also from $${REDIS_PASSWORD_ENV})` },
  queue: { type: 'string', default: DEFAULT_QUEUE, value: 'NAME', description: 'the queue name' },
  'redis-ca': { type: 'string', value: 'FILE', description: "PEM file of the CA that signed the Redis server's TLS certificate (rediss://)" },
};

export interface RedisFlags {
  url: string;
  queue: string;
  connection: RedisOptions;
}

export function readRedisFlags(values: Values): RedisFlags {
  const url = (values.redis as string | undefined) ?? process.env[REDIS_URL_ENV];
  if (!url) throw new RobustSynthError('ERR_BAD_INPUT', `--redis is required (a redis:// or rediss:// URL; or set ${REDIS_URL_ENV})`);
  const queue = String(values.queue ?? DEFAULT_QUEUE);
  if (!/^[A-Za-z0-9._-]{1,100}$/.test(queue)) throw new RobustSynthError('ERR_BAD_INPUT', `--queue must be letters, digits, . _ -, got '${queue}'`);
  const connection = redisOptions({
    url,
    password: process.env[REDIS_PASSWORD_ENV] || undefined,
    tlsCa: values['redis-ca'] as string | undefined,
  });
  return { url, queue, connection };
}

/** A duration for humans (lib/progress.ts). */
export { formatDuration as duration } from '../progress.js';
