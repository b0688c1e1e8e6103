/**
 * The bench's child processes: every measurement runs in its own (bench/worker.ts,
 * bench/tfjs-worker.ts, bench/python_loop.py), and the contended runs start a co-runner beside it.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TfjsJob, TfjsResult } from '../tfjs-worker.js';
import type { WorkerJob, WorkerResult } from '../worker.js';
import { BENCH, PYTHON, ROOT, THREADS } from './options.js';

export function run(cmd: string, argv: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30 * 60_000): Promise<string> {
  return new Promise((res, rej) => {
    execFile(cmd, argv, { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 64 << 20, timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) rej(new Error(`${cmd} ${argv.slice(0, 3).join(' ')} failed: ${err.message}\n${stderr.split('\n').slice(-15).join('\n')}`));
      else res(stdout);
    });
  });
}

export function lastJson<T>(stdout: string): T {
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
  if (!line) throw new Error(`no JSON in output: ${stdout.slice(-500)}`);
  return JSON.parse(line) as T;
}

/** LD_LIBRARY_PATH that makes the dynamic linker pick a BLAS for libtorch's libblas.so.3. */
export function blasEnv(which: string): NodeJS.ProcessEnv | undefined {
  if (which === 'system') return {};
  const dirs = which === 'reference'
    ? ['/usr/lib/x86_64-linux-gnu/blas', '/usr/lib/aarch64-linux-gnu/blas']
    : [process.env.RS_BENCH_OPENBLAS_DIR ?? '', '/usr/lib/x86_64-linux-gnu/openblas-openmp', '/usr/lib/x86_64-linux-gnu/openblas-pthread',
      '/usr/lib/aarch64-linux-gnu/openblas-openmp', '/usr/lib/aarch64-linux-gnu/openblas-pthread'];
  const dir = dirs.find((d) => d && existsSync(join(d, 'libblas.so.3')));
  if (!dir) return undefined;
  return { LD_LIBRARY_PATH: [dir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') };
}

/** CPU time (user + system, all threads) of a process so far, in ms; NaN when it cannot be read. */
export function processCpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks (USER_HZ, 100 on Linux).
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

export type LoadKind = 'spin' | 'omp';
export const LOAD_LABELS: Record<LoadKind, string> = {
  spin: 'beside a 1-thread busy loop',
  omp: `beside ${THREADS}-thread PyTorch convolutions`,
};

export interface Corunner {
  proc: ChildProcess;
  /** Resolves once the co-runner computes (Python: its first convolution done). */
  ready: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Another CPU-bound process on the machine, until stopped (at most 10 minutes): 'spin' is
 * `node -e 'for(;;);'` (one thread that never sleeps), 'omp' is bench/python_loop.py load
 * (LibTorch's OpenMP convolutions on THREADS threads, like a training job).
 */
export function startLoad(kind: LoadKind, env: NodeJS.ProcessEnv = {}): Corunner {
  const proc = kind === 'spin'
    ? spawn(process.execPath, ['-e', 'process.stdout.write(\'{"ready": true}\\n\'); const t = Date.now(); while (Date.now() - t < 600e3);'], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'],
    })
    : spawn(PYTHON, [join(BENCH, 'python_loop.py'), 'load', '--threads', String(THREADS), '--seconds', '600'], {
      cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'ignore'],
    });
  const exited = new Promise<void>((res) => proc.once('exit', () => res()));
  const ready = new Promise<void>((res, rej) => {
    let buf = '';
    const timer = setTimeout(() => rej(new Error(`the ${kind} co-runner did not start within 60 s`)), 60_000);
    proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('"ready"')) {
        clearTimeout(timer);
        res();
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`the ${kind} co-runner exited (${code}) before it was ready`));
    });
  }).then(() => new Promise<void>((r) => setTimeout(r, 200))); // its threads up to speed
  ready.catch(() => undefined);
  return {
    proc,
    ready,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

export async function worker(job: WorkerJob, env: NodeJS.ProcessEnv = {}): Promise<WorkerResult> {
  const out = await run(process.execPath, ['--import', 'tsx', join(BENCH, 'worker.ts'), JSON.stringify(job)], env);
  return lastJson<WorkerResult>(out);
}

export async function tfjsWorker(job: TfjsJob, env: NodeJS.ProcessEnv = {}): Promise<TfjsResult> {
  const out = await run(process.execPath, ['--import', 'tsx', join(BENCH, 'tfjs-worker.ts'), JSON.stringify(job)], env);
  return lastJson<TfjsResult>(out);
}

export interface PythonResult {
  stepMs: number[];
  finishMs: number[];
  floorMs: number[];
  maxRssKb: number;
  threads: number;
  blas: string[];
}
