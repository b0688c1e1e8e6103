// The queue end to end, with real parts: a redis-server of our own (password on, append-only
// file on), three `robust-synth worker` processes, each in a working directory of its own and
// sharing no directory with the submitter, and `robust-synth submit translate` of a folder of
// Fashion-MNIST PNGs with a corrupt file in the middle. One worker is SIGKILLed in the middle of a
// batch and Redis is restarted once; the outputs come back through Redis, and every one must
// exist exactly once, with the bytes (and the manifest) a single-machine `robust-synth translate`
// writes, while the corrupt file fails alone, never retried.
//
// Without redis-server these tests FAIL; set RS_SKIP_REDIS_TESTS=1 to skip them on purpose.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePng, readFashionMnist, writePng } from '../lib/index.js';
import { checkJob, jobId, jobImage, maxBatchFor, sha256Hex, type TranslateJobData } from '../lib/queue/jobs.js';
import { redact, redisOptions } from '../lib/queue/redis.js';
import { maxPngBytes, maxResultBytes } from '../lib/queue/results.js';
import { checkManifest, mergeManifest, writeEntry, writeShared } from '../lib/queue/storage.js';
import { slice } from '../lib/tensor.js';
import { randomBatch, tempDir } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const hasRedis = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;
const SKIP_REDIS = process.env.RS_SKIP_REDIS_TESTS === '1';

/** The built CLI when it is newer than the queue sources, else the sources through tsx (by absolute path: the workers run elsewhere). */
function cliCommand(): string[] {
  const dist = join(ROOT, 'dist/lib/cli/index.js');
  const sources = [
    ...readdirSync(join(ROOT, 'lib/queue')).map((f) => join(ROOT, 'lib/queue', f)),
    ...['worker', 'submit', 'status', 'collect'].map((c) => join(ROOT, `lib/cli/commands/${c}.ts`)),
    join(ROOT, 'lib/tasks/common.ts'), join(ROOT, 'lib/seeds.ts'), join(ROOT, 'lib/manifest.ts'),
  ];
  const built = (src: string) => src.replace(`${ROOT}/lib/`, `${ROOT}/dist/lib/`).replace(/\.ts$/, '.js');
  const fresh = existsSync(dist) && sources.every((s) => existsSync(built(s)) && statSync(built(s)).mtimeMs >= statSync(s).mtimeMs);
  return fresh ? [dist] : ['--import', pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href, join(ROOT, 'lib/cli/index.ts')];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

interface Proc {
  child: ChildProcess;
  out: string;
  exited: Promise<number | null>;
}

/** A robust-synth process in working directory `cwd`. */
function start(args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [...CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const p: Proc = { child, out: '', exited: new Promise((r) => child.on('exit', (code) => r(code))) };
  child.stdout!.on('data', (d) => (p.out += d));
  child.stderr!.on('data', (d) => (p.out += d));
  return p;
}

async function until(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const CLI = cliCommand();
const PASSWORD = 'q-test-secret';
const N = 19; // img000..img018, img009 corrupt: 18 images, 4 full batches of 4 and a partial one of 2
const CORRUPT = 9;
const BATCH = '4';
const ITERATIONS = '100'; // enough for a batch to last a while, and for any batch-size difference to show
const name = (i: number) => `img${String(i).padStart(3, '0')}`;

describe('queue: jobs, connections and storage, without Redis', () => {
  const image = Buffer.from('png bytes');
  const job = (o: Partial<TranslateJobData> = {}): TranslateJobData => ({
    v: 2, task: 'translate', model: 'fashion-robust', modelSha256: 'a'.repeat(64), shape: [1, 28, 28],
    settings: { eps: 10, step: 0.5, iterations: 100, constraint: '2', useBest: true, bf16: false, batch: 4 },
    submission: 's-1', files: ['x-to-dress.png'], source: 'in/x.png', to: 3, image: image.toString('base64'), imageSha256: sha256Hex(image), ...o,
  });
  const limits = { maxIterations: 1000, maxBatch: 64, maxImageBytes: 1 << 20, allowOut: [] as string[] };

  it('job ids: the same work, the same id; any change of model, settings, batch, input or output, another', () => {
    const id = jobId(job());
    expect(id).toMatch(/^rs-translate-[0-9a-f]{40}$/);
    expect(jobId(job({ source: 'elsewhere/x.png', model: 'renamed' }))).toBe(id); // labels, not the work
    for (const o of [
      { modelSha256: 'b'.repeat(64) }, { to: 4 }, { imageSha256: 'c'.repeat(64) }, { out: '/srv/other' }, { submission: 's-2' }, { files: ['y.png'] },
      { settings: { ...job().settings, batch: 8 } }, { settings: { ...job().settings, iterations: 99 } }, { settings: { ...job().settings, bf16: true } },
    ] as Array<Partial<TranslateJobData>>) {
      expect(jobId(job(o)), JSON.stringify(o)).not.toBe(id);
    }
  });

  it('a worker trusts nothing in a job: model names only, plain file names, bounded cost, allowed outputs, hashed input', () => {
    expect(checkJob(job(), limits).model).toBe('fashion-robust');
    for (const model of ['../models/evil', '/tmp/evil.pt', 'evil.pt', 'a/b', '', '..']) {
      expect(() => checkJob(job({ model }), limits), model).toThrow(/model name/);
    }
    for (const files of [['../x.png'], ['sub/x.png'], ['.hidden.png'], ['x.jpg'], []]) {
      expect(() => checkJob(job({ files }), limits), String(files)).toThrow(/file names|one file/);
    }
    expect(() => checkJob(job({ settings: { ...job().settings, iterations: 1001 } }), limits)).toThrow(/iterations/);
    expect(() => checkJob(job({ settings: { ...job().settings, batch: 65 } }), limits)).toThrow(/batch/);
    expect(() => checkJob(job({ submission: '../x' }), limits)).toThrow(/submission/);
    expect(() => checkJob({ ...job(), v: 1 }, limits)).toThrow(/job format/);
    // A worker writes nothing by default: a job that asks it to write is refused without --allow-out.
    expect(() => checkJob(job({ out: '/srv/out' }), limits)).toThrow(/writes nowhere \(no --allow-out\)/);
    expect(checkJob(job(), limits).out).toBeUndefined();
    const root = tempDir('rs-queue-allow-');
    mkdirSync(join(root, 'allowed'));
    symlinkSync('/tmp', join(root, 'allowed', 'link'));
    const allow = { ...limits, allowOut: [join(root, 'allowed')] };
    expect(() => checkJob(job({ out: 'relative/out' }), allow)).toThrow(/absolute/);
    expect(checkJob(job({ out: join(root, 'allowed', 'run1') }), allow).out).toBe(join(root, 'allowed', 'run1'));
    expect(() => checkJob(job({ out: join(root, 'elsewhere') }), allow)).toThrow(/--allow-out/);
    expect(() => checkJob(job({ out: join(root, 'allowed', '..', 'elsewhere') }), allow)).toThrow(/--allow-out/);
    expect(() => checkJob(job({ out: join(root, 'allowed', 'link', 'x') }), allow)).toThrow(/--allow-out/); // a symlink out of it
    expect(jobImage(checkJob(job(), limits) as TranslateJobData).equals(image)).toBe(true);
    // Without --max-batch, the largest batch follows from the shape and the machine's memory, and
    // a larger one is refused before anything is decoded or allocated.
    const derived = { ...limits, maxBatch: undefined };
    const big = maxBatchFor([3, 224, 224]);
    expect(big).toBeLessThan(maxBatchFor([1, 28, 28]));
    expect(maxBatchFor([3, 224, 224], 24 * 2 ** 30)).toBe(71);
    expect(maxBatchFor([3, 224, 224], 2 ** 30)).toBe(2);
    const large = (batch: number) => job({ shape: [3, 224, 224], settings: { ...job().settings, batch } });
    expect(checkJob(large(big), derived).settings.batch).toBe(big);
    expect(() => checkJob(large(big + 1), derived)).toThrow(new RegExp(`at most ${big} \\(derived from the shape and this machine's memory`));
    expect(maxResultBytes([3, 224, 224])).toBeLessThan(155_000);
    expect(maxResultBytes([1, 28, 28])).toBeLessThan(4_200);
    expect(() => jobImage(job({ imageSha256: 'd'.repeat(64) }))).toThrow(/sha256/);
    rmSync(root, { recursive: true, force: true });
  });

  it('Redis URLs: password, user, database, TLS; bad ones refused; passwords masked', () => {
    const o = redisOptions({ url: 'rediss://alice:p%40ss@redis.example:6380/2' });
    expect(o).toMatchObject({ host: 'redis.example', port: 6380, db: 2, username: 'alice', password: 'p@ss', maxRetriesPerRequest: null });
    expect(o.tls).toMatchObject({ servername: 'redis.example' });
    expect(redisOptions({ url: 'redis://:secret@127.0.0.1' })).toMatchObject({ host: '127.0.0.1', port: 6379, db: 0, password: 'secret' });
    expect(redisOptions({ url: 'redis://:secret@127.0.0.1' }).tls).toBeUndefined();
    expect(redisOptions({ url: 'redis://:in-url@h', password: 'from-env' }).password).toBe('from-env');
    expect(() => redisOptions({ url: 'http://h:6379' })).toThrow(/redis:\/\/ or rediss:\/\//);
    expect(() => redisOptions({ url: 'redis://h/db' })).toThrow(/database/);
    expect(redact('rediss://alice:p%40ss@h:1/0')).toBe('rediss://alice:***@h:1/0');
  });

  it('the PNG of any image stays within the documented bound of a waiting result (noise, the worst case for compression)', async () => {
    for (const shape of [[1, 28, 28], [3, 224, 224], [3, 16, 16]] as Array<[number, number, number]>) {
      const png = await encodePng(randomBatch([1, ...shape], 5), 0);
      expect(png.length, shape.join('x')).toBeLessThanOrEqual(maxPngBytes(shape));
      expect(png.length, shape.join('x')).toBeGreaterThan(0.8 * maxPngBytes(shape) - 600); // a tight bound, not a loose one
    }
  });

  it('the output directory: atomic writes leave no temp file; the manifest is merged from the entries, repairing lost updates', () => {
    const dir = tempDir('rs-queue-store-');
    const entry = (file: string) => ({
      file, task: 'translate', source: file, target: { index: 3, name: 'Dress' }, loss: 1, predicted: { index: 3, name: 'Dress' }, settings: {}, job: `rs-translate-${file}`,
    });
    for (const f of ['b.png', 'a.png']) {
      writeShared(dir, f, Buffer.from(f), `job-${f}`);
      writeEntry(dir, entry(f));
    }
    expect(mergeManifest(dir, [])).toBe(2);
    // A later merge that lost a race: the manifest lacks c.png, whose entry is on disk.
    writeShared(dir, 'c.png', Buffer.from('c'), 'job-c');
    writeEntry(dir, entry('c.png'));
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    expect(m.entries.map((e: { file: string }) => e.file)).toEqual(['a.png', 'b.png']);
    expect(mergeManifest(dir, [])).toBe(3);
    expect(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).entries.map((e: { file: string }) => e.file)).toEqual(['a.png', 'b.png', 'c.png']);
    expect(readdirSync(join(dir, '.robust-synth', 'tmp'))).toEqual([]);
    // A manifest that does not parse fails the job (ERR_BAD_INPUT) and is never replaced.
    writeFileSync(join(dir, 'manifest.json'), '{"entries": [trunc');
    expect(() => checkManifest(dir)).toThrow(expect.objectContaining({ code: 'ERR_BAD_INPUT' }));
    expect(() => mergeManifest(dir, [])).toThrow(/left as it is/);
    expect(readFileSync(join(dir, 'manifest.json'), 'utf8')).toBe('{"entries": [trunc');
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('queue: redis-server is there', () => {
  it.skipIf(SKIP_REDIS)('redis-server runs (install it: apt-get install redis-server; or set RS_SKIP_REDIS_TESTS=1 to skip the queue tests)', () => {
    expect(hasRedis, 'redis-server is not installed: the queue tests cannot run. Install it, or set RS_SKIP_REDIS_TESTS=1 to skip them on purpose').toBe(true);
  });
});

describe.skipIf(SKIP_REDIS || !hasRedis)('queue: workers on BullMQ over a real redis-server', () => {
  let dir: string;
  let port: number;
  let redis: Proc | undefined;
  const workers: Proc[] = [];
  let url: string;
  /** The submitter's working directory; each worker gets its own elsewhere. */
  let home: string;
  const workerDir = () => tempDir('rs-queue-worker-');

  const startRedis = async () => {
    // Append-only file on: a restart reloads the queue. Without persistence a restarted Redis is
    // empty: waiting jobs, results, locks and the record of finished ones would be gone.
    redis = undefined;
    const child = spawn('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'always',
      '--dir', join(dir, 'redis'), '--requirepass', PASSWORD, '--daemonize', 'no',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    const p: Proc = { child, out: '', exited: new Promise((r) => child.on('exit', (code) => r(code))) };
    child.stdout!.on('data', (d) => (p.out += d));
    await until('redis-server', () => /Ready to accept connections/.test(p.out), 20_000);
    redis = p;
  };
  const client = () => new Redis({ host: '127.0.0.1', port, password: PASSWORD });
  const startWorker = (name: string, extra: string[] = [], cwd = workerDir()) => {
    const w = start(
      ['worker', '--redis', `redis://127.0.0.1:${port}`, '--device', 'cpu', '--threads', '1', '--name', name,
        '--lock-ms', '3000', '--stalled-ms', '1000', '--max-stalled', '5', ...extra],
      cwd,
      { ROBUST_SYNTH_REDIS_PASSWORD: PASSWORD }, // the password from the environment, not the command line
    );
    workers.push(w);
    return { w, cwd };
  };

  beforeAll(async () => {
    dir = tempDir('rs-queue-');
    home = join(dir, 'submitter');
    mkdirSync(join(dir, 'redis'));
    mkdirSync(join(home, 'in'), { recursive: true });
    const t = readFashionMnist('test', { limit: N });
    for (let i = 0; i < N; i++) {
      if (i === CORRUPT) writeFileSync(join(home, 'in', `${name(i)}.png`), Buffer.from('not a png at all'));
      else await writePng(join(home, 'in', `${name(i)}.png`), slice(t.images, i, i + 1));
    }
    port = await freePort();
    url = `redis://:${PASSWORD}@127.0.0.1:${port}`;
    await startRedis();
  });

  afterAll(async () => {
    for (const w of workers) w.child.kill('SIGKILL');
    redis?.child.kill('SIGKILL');
    await Promise.all([...workers.map((w) => w.exited), redis?.exited]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses what it must before touching Redis: a model path, a wrong password, a missing --redis, an unreadable manifest', () => {
    const run = (args: string[]) => spawnSync(process.execPath, [...CLI, ...args], { cwd: home, encoding: 'utf8', timeout: 60_000 });
    const path = run(['submit', 'translate', '--image', 'in', '--to', 'Dress', '--out', 'x', '--redis', url, '--model', './models/fashion-robust.pt']);
    expect(path.status, path.stderr).toBe(2);
    expect(path.stderr).toMatch(/--model must be a model name .*no path/);
    const wrong = run(['status', '--redis', `redis://:nope@127.0.0.1:${port}`]);
    expect(wrong.status, wrong.stderr).toBe(2);
    expect(wrong.stderr).toMatch(/refused the credentials/);
    expect(wrong.stderr).not.toContain('nope');
    const none = run(['worker']);
    expect(none.status, none.stderr).toBe(2);
    expect(none.stderr).toMatch(/--redis is required/);
    const help = run(['submit', '--help']);
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain('Usage: robust-synth submit');
    mkdirSync(join(home, 'bad-manifest'));
    writeFileSync(join(home, 'bad-manifest', 'manifest.json'), 'not json');
    const bad = run(['submit', 'translate', '--image', 'in', '--to', 'Dress', '--out', 'bad-manifest', '--redis', url, '--detach']);
    expect(bad.status, bad.stderr).toBe(2);
    expect(bad.stderr).toMatch(/manifest\.json is not a robust-synth manifest.*\[ERR_BAD_INPUT\]/s);
    expect(readFileSync(join(home, 'bad-manifest', 'manifest.json'), 'utf8')).toBe('not json');
    const unknown = run(['collect', '--redis', url, '--submission', 'nothing-here', '--out', 'c']);
    expect(unknown.status, unknown.stderr).toBe(2);
    expect(unknown.stderr).toMatch(/no submission 'nothing-here'/);
  });

  it('3 workers sharing nothing but Redis, one SIGKILLed mid-batch, Redis restarted: every output once, byte-identical to a single-machine run', async () => {
    // The single-machine run, same --batch and --threads (the adaptive default follows the load).
    const single = spawnSync(process.execPath, [...CLI, 'translate', '--image', 'in', '--to', 'Dress', '--out', 'single',
      '--iterations', ITERATIONS, '--batch', BATCH, '--threads', '1', '--device', 'cpu'], { cwd: home, encoding: 'utf8', timeout: 300_000 });
    expect(single.status, single.stderr).toBe(1); // the corrupt file is skipped
    const expected = readdirSync(join(home, 'single')).filter((f) => f.startsWith('img')).sort();
    expect(expected).toHaveLength(N - 1);
    expect(expected).not.toContain(`${name(CORRUPT)}-to-dress.png`);

    const started = ['w1', 'w2', 'w3'].map((n) => startWorker(n));
    for (const { w } of started) await until('a worker to start', () => /ready: queue/.test(w.out) || w.child.exitCode !== null);
    for (const { w } of started) expect(w.child.exitCode, w.out).toBeNull();

    const submit = start(['submit', 'translate', '--image', 'in', '--to', 'Dress', '--out', 'queued', '--redis', url,
      '--iterations', ITERATIONS, '--batch', BATCH, '--attempts', '3'], home);

    // Kill the first worker that starts a batch, while it computes; then restart Redis.
    let victim: Proc | undefined;
    await until('a batch to start', () => (victim = started.map((x) => x.w).find((w) => /batch start/.test(w.out))) !== undefined);
    await new Promise((r) => setTimeout(r, 30));
    victim!.child.kill('SIGKILL');
    await victim!.exited;
    const killedLog = victim!.out;
    expect(killedLog.match(/batch start/g)!.length, killedLog).toBeGreaterThan((killedLog.match(/batch done/g) ?? []).length);

    await new Promise((r) => setTimeout(r, 300));
    redis!.child.kill('SIGTERM');
    await redis!.exited;
    await startRedis();

    const code = await Promise.race([submit.exited, new Promise((r) => setTimeout(() => r('timeout'), 240_000))]);
    expect(code, submit.out).toBe(1); // one job failed: the corrupt file
    expect(submit.out).toMatch(new RegExp(`failed .*${name(CORRUPT)}\\.png: .*\\[ERR_BAD_IMAGE\\]`));
    expect(submit.out).toMatch(new RegExp(`${N - 1} image\\(s\\) made`));

    // Every output exactly once, nothing partial, nothing else; the manifest as the single-machine run writes it.
    const out = join(home, 'queued');
    expect(readdirSync(out).sort()).toEqual([...expected, 'manifest.json'].sort());
    for (const f of expected) expect(readFileSync(join(out, f)).equals(readFileSync(join(home, 'single', f))), f).toBe(true);
    expect(readFileSync(join(out, 'manifest.json'), 'utf8')).toBe(readFileSync(join(home, 'single', 'manifest.json'), 'utf8'));
    // The workers wrote nothing anywhere: their working directories are as empty as they started.
    for (const { cwd } of started) expect(readdirSync(cwd), cwd).toEqual([]);

    const c = client();
    try {
      // The results left Redis once written; the killed worker's jobs came back through BullMQ's stalled-job check.
      expect(await c.keys('bull:robust-synth:rs-results:*')).toEqual([]);
      expect(await c.keys('bull:robust-synth:rs-submission:*')).toEqual([]);
      const keys = (await c.keys('bull:robust-synth:rs-translate-*')).filter((k) => /rs-translate-[0-9a-f]+$/.test(k));
      expect(keys).toHaveLength(N);
      const stalled = (await Promise.all(keys.map((k) => c.hget(k, 'stc')))).filter((v) => Number(v) > 0);
      expect(stalled.length).toBeGreaterThan(0);
    } finally {
      c.disconnect();
    }
    // The bad input failed once, on one worker, never retried.
    const logs = workers.map((w) => w.out).join('\n');
    expect(logs.match(new RegExp(`${name(CORRUPT)}-to-dress\\.png\\) failed: ERR_BAD_IMAGE`, 'g'))).toHaveLength(1);

    // Status: counts per state and the three workers seen.
    const status = spawnSync(process.execPath, [...CLI, 'status', '--redis', url, '--json'], { cwd: home, encoding: 'utf8', timeout: 60_000 });
    expect(status.status, status.stderr).toBe(0);
    const st = JSON.parse(status.stdout);
    expect(st.counts).toMatchObject({ completed: N - 1, failed: 1, waiting: 0, active: 0 });
    expect(st.workers.map((w: { id: string }) => w.id).sort()).toEqual(['w1', 'w2', 'w3']);

    // Resubmitting skips the finished work; the bad input is reported again, not retried.
    const batchesBefore = logs.match(/batch start/g)!.length;
    const again = start(['submit', 'translate', '--image', 'in', '--to', 'Dress', '--out', 'queued', '--redis', url, '--iterations', ITERATIONS, '--batch', BATCH], home);
    expect(await again.exited, again.out).toBe(1);
    expect(again.out).toMatch(new RegExp(`0 image\\(s\\) made .*${N - 1} already done, 1 failed`));
    const logsAfter = workers.map((w) => w.out).join('\n');
    expect(logsAfter.match(/batch start/g)!.length).toBe(batchesBefore);

    // A worker stops cleanly on SIGTERM.
    const live = started.map((x) => x.w).filter((w) => w !== victim);
    for (const w of live) w.child.kill('SIGTERM');
    for (const w of live) expect(await w.exited, w.out).toBe(0);
  }, 400_000);

  it('generate, detached then collected: the same images and manifest as a single-machine generate, and the results leave Redis', async () => {
    const args = ['--class', 'Sneaker', '--class', 'Bag', '--count', '5', '--seed', 'mvn', '--random-seed', '3', '--iterations', '20', '--batch', '4'];
    const single = spawnSync(process.execPath, [...CLI, 'generate', ...args, '--out', 'gen-single', '--threads', '1', '--device', 'cpu'], { cwd: home, encoding: 'utf8', timeout: 300_000 });
    expect(single.status, single.stderr).toBe(0);
    const { w: worker, cwd } = startWorker('gen-worker');
    await until('the worker', () => /ready: queue/.test(worker.out) || worker.child.exitCode !== null);
    const submit = start(['submit', 'generate', ...args, '--per-job', '3', '--out', 'gen-queued', '--redis', url, '--detach', '--submission', 'gen-1'], home);
    expect(await submit.exited, `${submit.out}\n${worker.out}`).toBe(0);
    expect(submit.out).toContain('robust-synth collect --redis URL --submission gen-1 --out');
    expect(existsSync(join(home, 'gen-queued'))).toBe(false); // detached: nothing written yet
    const collect = start(['collect', '--redis', url, '--submission', 'gen-1', '--out', 'gen-queued'], home);
    expect(await collect.exited, `${collect.out}\n${worker.out}`).toBe(0);
    const expected = readdirSync(join(home, 'gen-single')).filter((f) => f.endsWith('.png') && f !== 'contact-sheet.png').sort();
    expect(expected).toEqual([...[5, 6, 7, 8, 9].map((i) => `bag-mvn-${i}.png`), ...[0, 1, 2, 3, 4].map((i) => `sneaker-mvn-${i}.png`)]);
    expect(readdirSync(join(home, 'gen-queued')).filter((f) => f.endsWith('.png')).sort()).toEqual(expected);
    for (const f of expected) expect(readFileSync(join(home, 'gen-queued', f)).equals(readFileSync(join(home, 'gen-single', f))), f).toBe(true);
    expect(readFileSync(join(home, 'gen-queued', 'manifest.json'), 'utf8')).toBe(readFileSync(join(home, 'gen-single', 'manifest.json'), 'utf8'));
    const c = client();
    try {
      expect(await c.exists('bull:robust-synth:rs-results:gen-1', 'bull:robust-synth:rs-submission:gen-1')).toBe(0);
    } finally {
      c.disconnect();
    }
    expect(readdirSync(cwd)).toEqual([]);
    worker.child.kill('SIGTERM');
    expect(await worker.exited, worker.out).toBe(0);
  }, 300_000);

  it('--shared: a worker without --allow-out refuses to write; one with it writes into the shared directory', async () => {
    const shared = join(dir, 'shared');
    mkdirSync(shared);
    const { w: closed } = startWorker('no-allow');
    await until('the worker', () => /ready: queue/.test(closed.out) || closed.child.exitCode !== null);
    const args = ['submit', 'translate', '--image', join('in', 'img000.png'), '--to', 'Bag', '--out', join(shared, 'run'), '--shared', '--redis', url, '--iterations', '5', '--batch', '2'];
    const refused = start(args, home);
    expect(await refused.exited, refused.out).toBe(1);
    expect(refused.out).toMatch(/writes nowhere \(no --allow-out\).*\[ERR_BAD_INPUT\]/);
    expect(existsSync(join(shared, 'run'))).toBe(false);
    closed.child.kill('SIGTERM');
    expect(await closed.exited, closed.out).toBe(0);
    const { w: open } = startWorker('allow', ['--allow-out', shared]);
    await until('the worker', () => /ready: queue/.test(open.out) || open.child.exitCode !== null);
    const ok = start([...args, '--retry-failed'], home);
    expect(await ok.exited, `${ok.out}\n${open.out}`).toBe(0);
    expect(readdirSync(join(shared, 'run')).sort()).toEqual(['.robust-synth', 'img000-to-bag.png', 'manifest.json']);
    open.child.kill('SIGTERM');
    expect(await open.exited, open.out).toBe(0);
  }, 120_000);

  const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
  it.skipIf(!hasOpenssl)('over TLS (rediss://, a private CA given with --redis-ca) and a password', async () => {
    const tls = join(dir, 'tls');
    mkdirSync(tls);
    const ssl = (a: string[]) => {
      const r = spawnSync('openssl', a, { cwd: tls, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(r.stderr);
    };
    ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=rs-test-ca']);
    ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost']);
    writeFileSync(join(tls, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
    ssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'ext.cnf']);
    const tlsPort = await freePort();
    const child = spawn('redis-server', ['--port', '0', '--tls-port', String(tlsPort), '--bind', '127.0.0.1', '--tls-cert-file', join(tls, 'server.crt'),
      '--tls-key-file', join(tls, 'server.key'), '--tls-ca-cert-file', join(tls, 'ca.crt'), '--tls-auth-clients', 'no',
      '--save', '', '--appendonly', 'no', '--requirepass', PASSWORD, '--daemonize', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const server: Proc = { child, out: '', exited: new Promise((r) => child.on('exit', (c) => r(c))) };
    child.stdout!.on('data', (d) => (server.out += d));
    try {
      await until('redis-server (TLS)', () => /Ready to accept connections/.test(server.out), 20_000);
      const tlsUrl = `rediss://:${PASSWORD}@localhost:${tlsPort}`;
      const ca = ['--redis-ca', join(tls, 'ca.crt')];
      // Without the CA, the server's certificate is refused.
      const untrusted = spawnSync(process.execPath, [...CLI, 'status', '--redis', tlsUrl], { cwd: home, encoding: 'utf8', timeout: 60_000 });
      expect(untrusted.status, untrusted.stderr).toBe(1);
      expect(untrusted.stderr).toMatch(/self-signed certificate|unable to verify/);
      const worker = start(['worker', '--redis', tlsUrl, ...ca, '--device', 'cpu', '--threads', '1', '--name', 'tls-worker'], workerDir());
      workers.push(worker);
      await until('the TLS worker', () => /ready: queue/.test(worker.out) || worker.child.exitCode !== null);
      const out = join(home, 'tls-out');
      const submit = start(['submit', 'translate', '--image', join('in', 'img000.png'), '--to', 'Bag', '--out', out, '--redis', tlsUrl, ...ca, '--iterations', '5', '--batch', '2'], home);
      expect(await submit.exited, `${submit.out}\n${worker.out}`).toBe(0);
      expect(existsSync(join(out, 'img000-to-bag.png'))).toBe(true);
      worker.child.kill('SIGTERM');
      expect(await worker.exited, worker.out).toBe(0);
    } finally {
      child.kill('SIGKILL');
      await server.exited;
    }
  }, 120_000);
});
