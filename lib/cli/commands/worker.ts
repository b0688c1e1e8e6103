/**
 * `robust-synth worker`: takes jobs from the queue (lib/queue/worker.ts) until SIGINT or SIGTERM,
 * then finishes the jobs it holds and exits. It returns every output through Redis and writes
 * nothing, unless --allow-out lets `submit --shared` jobs write inside a directory. Models come
 * only from its allow-list: the embedded ones and --model-dir DIR, by the name a job gives.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { setThreads, type Device } from '../../classifier.js';
import { RobustSynthError } from '../../errors.js';
import { readRedisFlags, REDIS_FLAGS } from '../queue-options.js';
import { checkRedis, redact } from '../../queue/redis.js';
import { DEFAULT_LIMITS, startWorker } from '../../queue/worker.js';
import * as is from '../../validate.js';
import { numberFlag, untilStopped, type Command } from '../command.js';

function dirs(values: string[] | undefined, flag: string): string[] {
  return (values ?? []).map((d) => {
    if (!existsSync(d) || !statSync(d).isDirectory()) throw new RobustSynthError('ERR_BAD_INPUT', `${flag} must be a directory, got ${d}`);
    return resolve(d);
  });
}

export const workerCommand: Command = {
  name: 'worker',
  usage: '--redis URL [--device cpu|cuda|cuda:N] [--concurrency N] [--model-dir DIR] [options]',
  options: {
    ...REDIS_FLAGS,
    device: { type: 'string', default: 'auto', value: 'cpu|cuda|cuda:N|auto', description: 'where to compute' },
    concurrency: { type: 'string', default: 'auto', value: 'N|auto', description: "jobs held at once, each locked; compatible ones share a device batch (auto: twice the jobs' --batch, at most 256)" },
    'model-dir': { type: 'string', multiple: true, value: 'DIR', description: 'a directory of models (.pt and cards) jobs may name; the embedded models are always allowed, nothing else is', params: ['modelDirs'] },
    models: { type: 'string', multiple: true, value: 'DIR', description: '', aliasOf: 'model-dir' },
    threads: { type: 'string', value: 'N|auto', description: 'CPU threads for the compute (default: auto; fix it, e.g. 1, for results identical to other machines)' },
    'allow-out': { type: 'string', multiple: true, value: 'DIR', description: 'let `submit --shared` jobs write their outputs into directories inside DIR (default: none; the worker writes nothing and refuses such jobs)' },
    name: { type: 'string', value: 'NAME', description: 'this worker\'s name in status and results (default: HOST-PID)' },
    'window-ms': { type: 'string', default: '50', value: 'MS', description: 'a device batch that is not full runs once no compatible job has joined it for this long', params: ['windowMs'] },
    'lock-ms': { type: 'string', default: '30000', value: 'MS', description: "BullMQ's job lock: a killed worker's jobs return to the queue after about this", params: ['lockMs'] },
    'stalled-ms': { type: 'string', default: '30000', value: 'MS', description: "how often BullMQ's stalled-job check runs", params: ['stalledMs'] },
    'max-stalled': { type: 'string', default: '2', value: 'N', description: 'times a job may come back from a dead worker before it fails', params: ['maxStalled'] },
    fsync: { type: 'boolean', default: false, description: 'flush every output to disk before renaming it into place (survives a machine crash, not just a killed process; ~4 ms a file here)' },
    'max-iterations': { type: 'string', default: String(DEFAULT_LIMITS.maxIterations), value: 'N', description: 'refuse jobs that ask for more PGD iterations', params: ['maxIterations'] },
    'max-batch': { type: 'string', value: 'N', description: "refuse jobs that ask for larger device batches (default: derived from each job's input shape and this machine's memory)", params: ['maxBatch'] },
    'max-image-mb': { type: 'string', default: String(DEFAULT_LIMITS.maxImageBytes / (1 << 20)), value: 'MB', description: 'refuse jobs whose source image is larger', params: ['maxImageBytes'] },
  },
  async run(values) {
    const redis = readRedisFlags(values);
    const device = String(values.device);
    if (!/^(cpu|cuda|auto|cuda:\d+)$/.test(device)) throw new RobustSynthError('ERR_BAD_INPUT', `--device must be cpu, cuda, cuda:N or auto, got '${device}'`);
    const concurrency = values.concurrency === 'auto' ? 'auto' : is.integer('concurrency', numberFlag(values, 'concurrency'), { min: 1, max: 4096 });
    const windowMs = is.integer('windowMs', numberFlag(values, 'window-ms'), { min: 0, max: 60_000 });
    const lockMs = is.integer('lockMs', numberFlag(values, 'lock-ms'), { min: 100, max: 3600_000 });
    const stalledMs = is.integer('stalledMs', numberFlag(values, 'stalled-ms'), { min: 100, max: 3600_000 });
    const maxStalled = is.integer('maxStalled', numberFlag(values, 'max-stalled'), { min: 0, max: 1000 });
    const maxIterations = is.integer('maxIterations', numberFlag(values, 'max-iterations'), { min: 0, max: 1e7 });
    const maxBatch = values['max-batch'] === undefined ? undefined : is.integer('maxBatch', numberFlag(values, 'max-batch'), { min: 1, max: 1 << 20 });
    const mb = is.finiteNumber('maxImageBytes', numberFlag(values, 'max-image-mb'), { min: 0, minExclusive: true, max: 1024 });
    const name = values.name as string | undefined;
    if (name !== undefined && !/^[A-Za-z0-9._-]{1,100}$/.test(name)) throw new RobustSynthError('ERR_BAD_INPUT', `--name must be letters, digits, . _ -, got '${name}'`);
    const modelDirs = dirs(values['model-dir'] as string[] | undefined, '--model-dir');
    const allowOut = dirs(values['allow-out'] as string[] | undefined, '--allow-out');
    const threads = values.threads === 'auto' ? 'auto' : numberFlag(values, 'threads');
    if (threads !== undefined) setThreads(threads);
    const { version } = await checkRedis(redis.connection, redis.url);
    console.log(`robust-synth worker: Redis ${version} at ${redact(redis.url)}`);
    const worker = await startWorker({
      connection: redis.connection,
      queue: redis.queue,
      device: device as Device,
      concurrency,
      modelDirs,
      windowMs,
      lockMs,
      stalledMs,
      maxStalled,
      limits: { maxIterations, maxBatch, maxImageBytes: Math.round(mb * (1 << 20)), allowOut },
      name,
      fsync: Boolean(values.fsync),
    });
    await untilStopped();
    console.log(`robust-synth worker ${worker.id}: stopping (finishing the jobs it holds)`);
    await worker.close();
    console.log(`robust-synth worker ${worker.id}: ${worker.stats.images} image(s) in ${worker.stats.jobs} job(s), ${worker.stats.failed} failed`);
    return 0;
  },
};
