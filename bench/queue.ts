/**
 * Queue throughput: `robust-synth submit translate` of Fashion-MNIST PNGs to 1 and 2
 * `robust-synth worker` processes over a local redis-server, against the single-machine
 * `robust-synth translate` of the same files; plus the per-job overhead (0 iterations) and the
 * Redis commands per job (INFO commandstats before and after).
 *
 *   npx tsx bench/queue.ts                 # 256 images, about 5-8 minutes on 2 quiet cores
 *   npx tsx bench/queue.ts --images 128 --rounds 1
 *
 * Needs `npm run build:ts` (it runs dist/, as a deployment would) and redis-server on PATH.
 * Writes bench/out/queue.json and prints a markdown table (docs/queue.md quotes it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { readFashionMnist, writePng } from '../lib/index.js';
import { slice } from '../lib/tensor.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'dist/lib/cli/index.js');
const { values: args } = parseArgs({
  options: {
    images: { type: 'string', default: '256' },
    iterations: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '2' },
    out: { type: 'string', default: join(ROOT, 'bench/out') },
  },
});
const M = Number(args.images);
const ITER = args.iterations!;
const ROUNDS = Number(args.rounds);

interface Proc {
  child: ChildProcess;
  out: string;
  exited: Promise<number | null>;
}

function start(cmd: string, argv: string[]): Proc {
  const child = spawn(cmd, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const p: Proc = { child, out: '', exited: new Promise((r) => child.on('exit', (c) => r(c))) };
  child.stdout!.on('data', (d) => (p.out += d));
  child.stderr!.on('data', (d) => (p.out += d));
  return p;
}

async function until(cond: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const dir = mkdtempSync(join(tmpdir(), 'rs-bench-queue-'));
const port = 20000 + Math.floor(Math.random() * 20000);
const url = `redis://127.0.0.1:${port}`;
const redisProc = start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no']);
await until(() => /Ready to accept connections/.test(redisProc.out));
const redis = new Redis({ port, host: '127.0.0.1' });

const t = readFashionMnist('test', { limit: 2 * M });
for (const [name, n] of [['in', M], ['in2', 2 * M]] as const) {
  mkdirSync(join(dir, name));
  for (let i = 0; i < n; i++) await writePng(join(dir, name, `img${String(i).padStart(4, '0')}.png`), slice(t.images, i, i + 1));
}
mkdirSync(join(dir, 'warm'));
for (let i = 0; i < 8; i++) await writePng(join(dir, 'warm', `w${i}.png`), slice(t.images, i, i + 1));

/** Redis's own counters: Lua script calls, commands executed (inside scripts too), CPU ms. */
async function redisCounters(): Promise<{ scripts: number; commands: number; cpuMs: number }> {
  const stats = await redis.info('commandstats');
  let scripts = 0;
  let commands = 0;
  for (const m of stats.matchAll(/cmdstat_(\S+):calls=(\d+)/g)) {
    if (/^(eval|evalsha|fcall)$/.test(m[1]!)) scripts += Number(m[2]);
    if (m[1] !== 'info') commands += Number(m[2]);
  }
  const cpu = await redis.info('cpu');
  const cpuMs = 1000 * (Number(/used_cpu_user:([\d.]+)/.exec(cpu)![1]) + Number(/used_cpu_sys:([\d.]+)/.exec(cpu)![1]));
  return { scripts, commands, cpuMs };
}

interface Config {
  what: 'queue' | 'single';
  workers: number;
  threads: string;
  iterations: string;
  batch: string;
  input: 'in' | 'in2';
}
interface Result extends Config {
  images: number;
  seconds: number[];
  scriptsPerJob?: number;
  commandsPerJob?: number;
  redisCpuMsPerJob?: number;
}
let run = 0;

async function once(c: Config, r: Result): Promise<void> {
  const n = c.input === 'in' ? M : 2 * M;
  if (c.what === 'single') {
    const t0 = performance.now();
    const s = spawnSync(process.execPath, [CLI, 'translate', '--image', join(dir, c.input), '--to', 'Dress', '--out', join(dir, `single-${run++}`),
      '--iterations', c.iterations, '--batch', c.batch, '--threads', c.threads, '--device', 'cpu'], { cwd: ROOT, encoding: 'utf8' });
    if (s.status !== 0) throw new Error(s.stderr);
    r.seconds.push((performance.now() - t0) / 1000);
    return;
  }
  const queue = `bench-${run++}`;
  const ws = Array.from({ length: c.workers }, (_, i) =>
    start(process.execPath, [CLI, 'worker', '--redis', url, '--queue', queue, '--device', 'cpu', '--threads', c.threads, '--name', `w${i + 1}`]),
  );
  try {
    for (const w of ws) await until(() => /ready: queue/.test(w.out));
    // Warm-up on the same queue (model loaded, first-call costs paid), then the measured set.
    const warm = spawnSync(process.execPath, [CLI, 'submit', 'translate', '--image', join(dir, 'warm'), '--to', 'Dress', '--out', join(dir, `${queue}-warm`),
      '--redis', url, '--queue', queue, '--iterations', c.iterations, '--batch', c.batch], { cwd: ROOT, encoding: 'utf8' });
    if (warm.status !== 0) throw new Error(warm.stderr);
    const c0 = await redisCounters();
    const t0 = performance.now();
    const s = spawnSync(process.execPath, [CLI, 'submit', 'translate', '--image', join(dir, c.input), '--to', 'Dress', '--out', join(dir, queue),
      '--redis', url, '--queue', queue, '--iterations', c.iterations, '--batch', c.batch], { cwd: ROOT, encoding: 'utf8' });
    r.seconds.push((performance.now() - t0) / 1000);
    if (s.status !== 0) throw new Error(s.stderr);
    const c1 = await redisCounters();
    r.scriptsPerJob = (c1.scripts - c0.scripts) / n;
    r.commandsPerJob = (c1.commands - c0.commands) / n;
    r.redisCpuMsPerJob = (c1.cpuMs - c0.cpuMs) / n;
  } finally {
    for (const w of ws) w.child.kill('SIGTERM');
    await Promise.all(ws.map((w) => w.exited));
  }
}

const configs: Config[] = [
  // Per-job overhead: no PGD at all; what is left is the queue, decoding, encoding and writing.
  // Measured at M and 2M images: the difference over M is the cost of one more job.
  { what: 'queue', workers: 1, threads: '1', iterations: '0', batch: '64', input: 'in' },
  { what: 'queue', workers: 1, threads: '1', iterations: '0', batch: '64', input: 'in2' },
  { what: 'queue', workers: 1, threads: '1', iterations: '0', batch: '1', input: 'in' },
  { what: 'queue', workers: 1, threads: '1', iterations: '0', batch: '1', input: 'in2' },
  { what: 'single', workers: 1, threads: '1', iterations: '0', batch: '64', input: 'in' },
  { what: 'single', workers: 1, threads: '1', iterations: '0', batch: '64', input: 'in2' },
  // Throughput at the task's default settings at 28x28 (100 iterations), batch 64.
  { what: 'single', workers: 1, threads: '1', iterations: ITER, batch: '64', input: 'in' },
  { what: 'queue', workers: 1, threads: '1', iterations: ITER, batch: '64', input: 'in' },
  { what: 'queue', workers: 2, threads: '1', iterations: ITER, batch: '64', input: 'in' },
];
const results: Result[] = configs.map((c) => ({ ...c, images: c.input === 'in' ? M : 2 * M, seconds: [] }));
const rows = results;
const load0 = loadavg();
try {
  // Rounds interleaved (ABC ABC), so that a change of load on the shared machine hits every configuration alike.
  for (let r = 0; r < ROUNDS; r++) for (const [i, c] of configs.entries()) await once(c, results[i]!);
} finally {
  redis.disconnect();
  redisProc.child.kill('SIGTERM');
  await redisProc.exited;
  rmSync(dir, { recursive: true, force: true });
}
const load1 = loadavg();
const best = (r: Result) => Math.min(...r.seconds);
const find = (w: string, b: string, input: string) => results.find((r) => r.what === w && r.iterations === '0' && r.batch === b && r.input === input)!;
const perJob = (w: string, b: string) => ((best(find(w, b, 'in2')) - best(find(w, b, 'in'))) / M) * 1000;

const median = (r: Result) => [...r.seconds].sort((a, b) => a - b)[Math.floor((r.seconds.length - 1) / 2)]!;
const header = '| run | processes x threads | iterations | batch | images | images/s (best) | images/s (median) | Lua scripts per job | Redis commands per job | Redis CPU ms per job | wall s (rounds) |\n|---|---|---|---|---|---|---|---|---|---|---|';
const table = rows
  .map((r) => `| ${r.what === 'queue' ? 'queue' : 'single-machine translate'} | ${r.workers} x ${r.threads} | ${r.iterations} | ${r.batch} | ${r.images} | ${(r.images / best(r)).toFixed(1)} | ${(r.images / median(r)).toFixed(1)} | ` +
    `${r.scriptsPerJob?.toFixed(1) ?? ''} | ${r.commandsPerJob?.toFixed(1) ?? ''} | ${r.redisCpuMsPerJob?.toFixed(2) ?? ''} | ${r.seconds.map((x) => x.toFixed(2)).join(', ')} |`)
  .join('\n');
const overhead = `Cost of one more image at 0 iterations (difference between ${2 * M} and ${M} images, over ${M}): ` +
  `queue at batch 64 ${perJob('queue', '64').toFixed(2)} ms, queue at batch 1 ${perJob('queue', '1').toFixed(2)} ms, single-machine translate ${perJob('single', '64').toFixed(2)} ms.`;
const when = `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpus()[0]?.model ?? '?'} (${cpus().length} cores), best of ${ROUNDS} interleaved rounds, ` +
  `load average ${load0.map((x) => x.toFixed(2)).join(' ')} at start, ${load1.map((x) => x.toFixed(2)).join(' ')} at the end`;
console.log(`${when}\n\n${header}\n${table}\n\n${overhead}`);
mkdirSync(args.out!, { recursive: true });
writeFileSync(join(args.out!, 'queue.json'), JSON.stringify({ when, overhead, rows }, null, 2) + '\n');
