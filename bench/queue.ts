/**
 * Queue throughput and cost, at 28x28 (the embedded fashion-robust, Fashion-MNIST test images)
 * and at 224x224 (a random-weight ResNet50, exported at run time by test/fixtures/study_models.py
 * as the study's tests do): `robust-synth submit translate` to 1 and 2 `robust-synth worker`
 * processes over a local redis-server, against the single-machine `robust-synth translate`.
 *
 *   npx tsx bench/queue.ts                          # both sizes
 *   npx tsx bench/queue.ts --sizes 28 --images 64 --rounds 1
 *
 * Every process runs from the sources (tsx), each worker in a directory of its own, warmed up
 * first (model loaded, first calls made). The queue's images/s is submit's own figure for 2M
 * images (images over the time from its first add to its last result written); the
 * single-machine one is the same work in this process once the model is loaded (single()).
 * The marginal figure (M / (t(2M) - t(M)), whole processes) is given too. Per image it reports Redis's own counters (INFO
 * commandstats: commands executed, scripts, CPU) over the 2M run, and the Redis memory one
 * waiting result holds (MEMORY USAGE of the results stream of a detached submission, over its
 * entries) and one finished job's record keeps. The load average is printed with each row: the
 * machine is shared. Writes bench/out/queue.json and prints a markdown table.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { writeFileAtomic } from '../lib/atomic-write.js';
import { Classifier, setThreads } from '../lib/classifier.js';
import { encodePng, readFashionMnist, readImage, translate, writePng } from '../lib/index.js';
import { manifestEntry, writeManifest } from '../lib/manifest.js';
import { concat, slice, type ImageBatch } from '../lib/tensor.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = ['--import', pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, join(ROOT, 'lib/cli/index.ts')];
const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '28,224' },
    images: { type: 'string', default: '64' },
    'images-224': { type: 'string', default: '4' },
    iterations: { type: 'string', default: '100' },
    'iterations-224': { type: 'string', default: '2' },
    rounds: { type: 'string', default: '1' },
    out: { type: 'string', default: join(ROOT, 'bench/out') },
  },
});
const ROUNDS = Number(args.rounds);

interface Proc {
  child: ChildProcess;
  out: string;
  exited: Promise<number | null>;
}

function start(cmd: string, argv: string[], cwd: string): Proc {
  const child = spawn(cmd, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { child, out: '', exited: new Promise((r) => child.on('exit', (c) => r(c))) };
  child.stdout!.on('data', (d) => (p.out += d));
  child.stderr!.on('data', (d) => (p.out += d));
  return p;
}

async function until(cond: () => boolean, ms = 120_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const dir = mkdtempSync(join(tmpdir(), 'rs-bench-queue-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const url = `redis://127.0.0.1:${port}`;
const redisProc = start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], dir);
await until(() => /Ready to accept connections/.test(redisProc.out));
const redis = new Redis({ port, host: '127.0.0.1' });
const load = () => loadavg()[0]!.toFixed(1);

/** Redis's own counters: commands executed (inside scripts too), script calls, CPU ms. */
async function redisCounters(): Promise<{ commands: number; scripts: number; cpuMs: number }> {
  const stats = await redis.info('commandstats');
  let scripts = 0;
  let commands = 0;
  for (const m of stats.matchAll(/cmdstat_(\S+):calls=(\d+)/g)) {
    if (/^(eval|evalsha|fcall)$/.test(m[1]!)) scripts += Number(m[2]);
    if (!/^(info|memory|xlen|keys)$/.test(m[1]!)) commands += Number(m[2]);
  }
  const cpu = await redis.info('cpu');
  const cpuMs = 1000 * (Number(/used_cpu_user:([\d.]+)/.exec(cpu)![1]) + Number(/used_cpu_sys:([\d.]+)/.exec(cpu)![1]));
  return { commands, scripts, cpuMs };
}

interface Size {
  name: string;
  model: string[];
  images: number;
  iterations: string;
  batch: string;
  input: (n: number) => string;
}

async function writeImages(name: string, batch: ImageBatch, n: number): Promise<string> {
  const d = join(dir, name);
  mkdirSync(d);
  for (let i = 0; i < n; i++) await writePng(join(d, `img${String(i).padStart(4, '0')}.png`), slice(batch, i % batch.shape[0], (i % batch.shape[0]) + 1));
  return d;
}

async function sizes(): Promise<Size[]> {
  const out: Size[] = [];
  const wanted = args.sizes!.split(',');
  if (wanted.includes('28')) {
    const M = Number(args.images);
    const t = readFashionMnist('test', { limit: 2 * M });
    const inputs = new Map([[M, await writeImages('in28-1', t.images, M)], [2 * M, await writeImages('in28-2', t.images, 2 * M)]]);
    out.push({ name: '1x28x28 fashion-robust', model: [], images: M, iterations: args.iterations!, batch: '64', input: (n) => inputs.get(n)! });
  }
  if (wanted.includes('224')) {
    const models = join(dir, 'models');
    const py = spawnSync(process.env.RS_PYTHON ?? '/usr/bin/python3', [join(ROOT, 'test/fixtures/study_models.py'), models], { encoding: 'utf8' });
    if (py.status !== 0 || !existsSync(join(models, 'standard.pt'))) throw new Error(`exporting the ResNet50 failed: ${py.stderr}`);
    const M = Number(args['images-224']);
    // Photos-like inputs: Fashion-MNIST images, resized to 224x224x3 by the decoder.
    const t = readFashionMnist('test', { limit: 2 * M });
    const inputs = new Map([[M, await writeImages('in224-1', t.images, M)], [2 * M, await writeImages('in224-2', t.images, 2 * M)]]);
    out.push({ name: '3x224x224 ResNet50 (random weights)', model: ['--model', 'standard', '--model-dir', models], images: M, iterations: args['iterations-224']!, batch: '4', input: (n) => inputs.get(n)! });
  }
  return out;
}

let run = 0;
const cwd = () => mkdtempSync(join(dir, 'cwd-'));
const workerModels = (s: Size) => (s.model.length ? ['--models', s.model[3]!] : []);

/**
 * The single-machine run's own clock: what `robust-synth translate` does once its model is loaded
 * (read and decode the folder, PGD at --batch, encode and write each PNG atomically, the manifest),
 * in this process, 1 thread. Process start-up and model loading are left out, as the warmed-up
 * workers leave them out of the queue's figure.
 */
const loaded = new Map<string, Classifier>();
async function single(s: Size, n: number, iterations: string): Promise<number> {
  setThreads(1);
  const key = s.model.join(' ') || 'fashion-robust';
  if (!loaded.has(key)) loaded.set(key, await Classifier.load(s.model[1] ?? 'fashion-robust', { device: 'cpu', modelDirs: s.model.length ? [s.model[3]!] : [] }));
  const clf = loaded.get(key)!;
  const [c, h, w] = clf.inputShape;
  const src = s.input(n);
  const out = join(dir, `single-${run++}`);
  mkdirSync(out);
  const t0 = performance.now();
  const files = readdirSync(src).sort();
  const image = concat(await Promise.all(files.map((f) => readImage(join(src, f), { channels: c, height: h, width: w }))));
  const r = await translate({ classifier: clf, image, to: 3, iterations: Number(iterations), batch: Number(s.batch) });
  for (let i = 0; i < files.length; i++) writeFileAtomic(join(out, files[i]!), await encodePng(r.images, i));
  writeManifest(join(out, 'manifest.json'), files.map((f, i) => manifestEntry(r, i, clf, f, join(src, f), clf.name)));
  return n / ((performance.now() - t0) / 1000);
}

async function withWorkers<T>(s: Size, count: number, iterations: string, body: (queue: string) => Promise<T>): Promise<T> {
  const queue = `bench-${run++}`;
  const ws = Array.from({ length: count }, (_, i) =>
    start(process.execPath, [...CLI, 'worker', '--redis', url, '--queue', queue, '--device', 'cpu', '--threads', '1', '--name', `w${i + 1}`, ...workerModels(s)], cwd()),
  );
  try {
    for (const w of ws) await until(() => /ready: queue/.test(w.out));
    // Warm-up on the same queue: the models loaded, first-call costs paid.
    const warm = spawnSync(process.execPath, [...CLI, 'submit', 'translate', '--image', s.input(s.images), '--to', '3', ...s.model, '--out', join(dir, `${queue}-warm`),
      '--redis', url, '--queue', queue, '--iterations', iterations, '--batch', s.batch], { cwd: cwd(), encoding: 'utf8' });
    if (warm.status !== 0) throw new Error(warm.stderr + ws.map((w) => w.out).join('\n'));
    return await body(queue);
  } finally {
    for (const w of ws) w.child.kill('SIGTERM');
    await Promise.all(ws.map((w) => w.exited));
  }
}

/** The wall time of a submit, and its own images/s (from its first add to its last result written). */
function submit(s: Size, n: number, queue: string, iterations: string, extra: string[] = []): { wall: number; rate: number } {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [...CLI, 'submit', 'translate', '--image', s.input(n), '--to', '3', ...s.model, '--out', join(dir, `${queue}-${n}-${run++}`),
    '--redis', url, '--queue', queue, '--iterations', iterations, '--batch', s.batch, ...extra], { cwd: cwd(), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return { wall: (performance.now() - t0) / 1000, rate: Number(/\(([\d.]+) img\/s\)/.exec(r.stdout)?.[1] ?? NaN) };
}

interface Row {
  size: string;
  what: string;
  iterations: string;
  batch: string;
  /** images/s, best round: the queue's own for 2M images; single-machine marginal. */
  rate: number;
  /** Marginal images/s: M / (t(2M) - t(M)), best round. */
  marginal: number;
  /** Marginal seconds per image. */
  msPerImage: number;
  commandsPerImage?: number;
  scriptsPerImage?: number;
  redisCpuMsPerImage?: number;
  load: string;
}
const rows: Row[] = [];
const memory: Array<{ size: string; bytesPerWaitingResult: number; bytesPerFinishedJob: number; pngBytes: number; load: string }> = [];

try {
  for (const s of await sizes()) {
    const M = s.images;
    for (const iterations of ['0', s.iterations]) {
      for (const what of ['single', 'queue 1 worker', 'queue 2 workers']) {
        let best = Infinity;
        let rate = 0;
        let counters: { commands: number; scripts: number; cpuMs: number } | undefined;
        for (let r = 0; r < ROUNDS; r++) {
          if (what === 'single') {
            const r2 = await single(s, 2 * M, iterations);
            const r1 = await single(s, M, iterations);
            best = Math.min(best, (2 * M) / r2 - M / r1);
            rate = Math.max(rate, r2);
          }
          else {
            await withWorkers(s, what.includes('2') ? 2 : 1, iterations, async (queue) => {
              const t1 = submit(s, M, queue, iterations);
              const c0 = await redisCounters();
              const t2 = submit(s, 2 * M, queue, iterations);
              const c1 = await redisCounters();
              best = Math.min(best, t2.wall - t1.wall);
              rate = Math.max(rate, t2.rate);
              counters = { commands: (c1.commands - c0.commands) / (2 * M), scripts: (c1.scripts - c0.scripts) / (2 * M), cpuMs: (c1.cpuMs - c0.cpuMs) / (2 * M) };
            });
          }
        }
        const row: Row = {
          size: s.name, what, iterations, batch: s.batch, rate, marginal: M / Math.max(1e-3, best), msPerImage: 1000 / rate, load: load(),
          ...(counters ? { commandsPerImage: counters.commands, scriptsPerImage: counters.scripts, redisCpuMsPerImage: counters.cpuMs } : {}),
        };
        rows.push(row);
        console.error(JSON.stringify(row));
      }
    }
    // Redis memory: a detached submission's results wait in its stream until collected.
    await withWorkers(s, 1, '0', async (queue) => {
      submit(s, M, queue, '0', ['--detach', '--submission', 'mem']);
      const key = `bull:${queue}:rs-results:mem`;
      for (const t0 = Date.now(); (await redis.xlen(key)) < M; await new Promise((r) => setTimeout(r, 100))) {
        if (Date.now() - t0 > 600_000) throw new Error('timed out waiting for the results');
      }
      const streamBytes = Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
      const jobKeys = (await redis.keys(`bull:${queue}:rs-translate-*`)).filter((k) => /rs-translate-[0-9a-f]+$/.test(k));
      const jobBytes = Number(await redis.call('MEMORY', 'USAGE', jobKeys[0]!, 'SAMPLES', '0'));
      const entries = (await redis.xrangeBuffer(key, '-', '+', 'COUNT', 1))[0]![1];
      const png = entries[entries.findIndex((b) => b.toString() === 'png') + 1]!.length;
      memory.push({ size: s.name, bytesPerWaitingResult: streamBytes / M, bytesPerFinishedJob: jobBytes, pngBytes: png, load: load() });
      console.error(JSON.stringify(memory.at(-1)));
    });
  }
} finally {
  for (const clf of loaded.values()) await clf.dispose();
  redis.disconnect();
  redisProc.child.kill('SIGTERM');
  await redisProc.exited;
  rmSync(dir, { recursive: true, force: true });
}

const when = `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpus()[0]?.model ?? '?'} (${cpus().length} cores), best of ${ROUNDS} round(s)`;
const header = '| inputs | run | iterations | batch | images/s | ms per image | marginal images/s | Redis commands per image | Lua scripts per image | Redis CPU ms per image | load (1 min) |\n|---|---|---|---|---|---|---|---|---|---|---|';
const table = rows
  .map((r) => `| ${r.size} | ${r.what} | ${r.iterations} | ${r.batch} | ${r.rate.toFixed(2)} | ${r.msPerImage.toFixed(1)} | ${r.marginal.toFixed(2)} | ${r.commandsPerImage?.toFixed(1) ?? ''} | ${r.scriptsPerImage?.toFixed(1) ?? ''} | ${r.redisCpuMsPerImage?.toFixed(2) ?? ''} | ${r.load} |`)
  .join('\n');
const mem = memory.map((m) => `| ${m.size} | ${m.pngBytes} | ${Math.round(m.bytesPerWaitingResult)} | ${m.bytesPerFinishedJob} | ${m.load} |`).join('\n');
console.log(`${when}\n\n${header}\n${table}\n\n| inputs | PNG bytes | Redis bytes per waiting result | Redis bytes per finished job | load |\n|---|---|---|---|---|\n${mem}`);
mkdirSync(args.out!, { recursive: true });
writeFileSync(join(args.out!, 'queue.json'), JSON.stringify({ when, rows, memory }, null, 2) + '\n');
