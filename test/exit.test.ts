// Process exit right after thread-count changes: every run must end, with code 0. Before the
// compute threads were stopped at exit, a node process that only called setThreads(1) and
// threadPolicy() sometimes hung in LibTorch's pthreadpool_destroy or crashed (SIGSEGV, SIGABRT
// "malloc_consolidate(): unaligned fastbin chunk"), more often on a busy machine: exit() freed the
// pool that the compute thread was replacing. A busy process runs beside the children, as the
// load that makes the race likely.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const FIXTURE = join(import.meta.dirname, 'fixtures', 'exit-after-threads.ts');

interface Run {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

function run(mode: string): Promise<Run> {
  return new Promise((resolve) => {
    // The hang guard: a run that has not ended in 60 s is killed, and reads as signal SIGKILL.
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('process exit after thread-count changes', () => {
  const busy: ChildProcess[] = [];
  afterAll(() => busy.forEach((p) => p.kill('SIGKILL')));

  it('ends every run with code 0: no hang, no crash', async () => {
    busy.push(spawn(process.execPath, ['-e', 'for(;;);'], { stdio: 'ignore' }));
    const modes = [...Array<string>(8).fill('quick'), ...Array<string>(4).fill('toggle')];
    const runs: Array<Run & { mode: string }> = [];
    // Three at a time: enough to overlap their exits with each other's start-up.
    for (let i = 0; i < modes.length; i += 3) {
      const group = modes.slice(i, i + 3);
      runs.push(...(await Promise.all(group.map(async (mode) => ({ mode, ...(await run(mode)) })))));
    }
    const bad = runs.filter((r) => r.code !== 0 || r.signal !== null);
    expect(bad.map((r) => `${r.mode}: code ${r.code}, signal ${r.signal}, ${r.stderr.slice(-300)}`)).toEqual([]);
    // The policy each printed before exiting: the fixed count at once, without a job (quick).
    for (const r of runs.filter((x) => x.mode === 'quick')) {
      expect(JSON.parse(r.stdout)).toEqual({ mode: 'fixed', current: 1, max: 1 });
    }
  }, 600_000);
});
