/** `robust-synth status`: a queue's job counts per state and the workers seen (lib/queue/status.ts). */
import { duration, readRedisFlags, REDIS_FLAGS } from '../queue-options.js';
import { checkRedis, redact } from '../../queue/redis.js';
import { queueStatus } from '../../queue/status.js';
import type { Command } from '../command.js';

export const statusCommand: Command = {
  name: 'status',
  usage: '--redis URL [--queue NAME] [--json]',
  options: {
    ...REDIS_FLAGS,
    json: { type: 'boolean', default: false, description: 'print the status as JSON' },
  },
  async run(values) {
    const redis = readRedisFlags(values);
    const { version } = await checkRedis(redis.connection, redis.url);
    const s = await queueStatus({ connection: redis.connection, queue: redis.queue });
    if (values.json) {
      console.log(JSON.stringify(s, null, 2));
      return 0;
    }
    console.log(`queue ${s.queue} on ${redact(redis.url)} (Redis ${version})`);
    console.log(`  ${Object.entries(s.counts).map(([k, v]) => `${k} ${v}`).join('  ')}`);
    const alive = s.workers.filter((w) => w.alive).length;
    console.log(`workers: ${alive} alive, ${s.workers.length} seen in the last day`);
    for (const w of s.workers) {
      const state = w.alive ? 'alive' : w.stopped ? 'stopped' : 'gone';
      console.log(
        `  ${w.id.padEnd(24)} ${state.padEnd(8)} seen ${duration(w.ageMs)} ago  ${w.images} image(s) in ${w.jobs} job(s), ${w.failed} failed, ` +
          `${w.batches} batch(es)  device ${w.device}  concurrency ${w.concurrency}${w.connected ? '' : w.alive ? '  (no connection listed)' : ''}`,
      );
    }
    return 0;
  },
};
