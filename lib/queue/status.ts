/** A queue's state: job counts per state, and the workers seen (heartbeats) and connected now. */
import { Queue } from 'bullmq';
import type { RedisOptions } from 'ioredis';
import { DEFAULT_QUEUE } from './jobs.js';
import { bullConnection, createClient } from './redis.js';
import { workersKey, type WorkerStats } from './keys.js';

export interface QueueStatus {
  queue: string;
  counts: Record<string, number>;
  workers: Array<WorkerStats & { alive: boolean; connected: boolean; ageMs: number }>;
}

/** Heartbeats older than this are listed as gone; older than a day they are dropped. */
const ALIVE_MS = 20_000;
const FORGET_MS = 24 * 3600_000;

export async function queueStatus(o: { connection: RedisOptions; queue?: string; prefix?: string }): Promise<QueueStatus> {
  const name = o.queue ?? DEFAULT_QUEUE;
  const prefix = o.prefix ?? 'bull';
  const queue = new Queue(name, { connection: bullConnection(o.connection), prefix });
  queue.on('error', () => {});
  const redis = createClient(o.connection);
  try {
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'completed', 'failed');
    // Connected workers (CLIENT LIST; some hosted Redis forbid it, then heartbeats alone tell).
    const connected = new Set<string>();
    try {
      for (const w of await queue.getWorkers()) if (typeof w.rawname === 'string') connected.add(w.rawname);
    } catch {
      // no CLIENT LIST
    }
    const now = Date.now();
    const key = workersKey(prefix, name);
    const workers: QueueStatus['workers'] = [];
    for (const [id, json] of Object.entries(await redis.hgetall(key))) {
      let s: WorkerStats;
      try {
        s = JSON.parse(json) as WorkerStats;
      } catch {
        continue;
      }
      const ageMs = now - s.lastSeen;
      if (ageMs > FORGET_MS) {
        await redis.hdel(key, id);
        continue;
      }
      const isConnected = [...connected].some((n) => n.endsWith(`:w:${id}`) || n === id);
      workers.push({ ...s, ageMs, connected: isConnected, alive: !s.stopped && ageMs < ALIVE_MS });
    }
    workers.sort((a, b) => Number(b.alive) - Number(a.alive) || a.id.localeCompare(b.id));
    return { queue: name, counts, workers };
  } finally {
    await queue.close().catch(() => {});
    redis.disconnect();
  }
}
