// scripts/gpu-check.sh in its CPU mode, end to end: the same script a GPU machine runs (build
// against Python's torch, tests on the device, device-vs-CPU comparison, bench), with
// --device cpu. It checks the plumbing and the outputs a GPU run will bring back.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PYTHON, tempDir } from './helpers.js';

let out: string;
let run: ReturnType<typeof spawnSync>;

beforeAll(() => {
  out = tempDir('rs-gpu-check-');
  run = spawnSync('bash', ['scripts/gpu-check.sh', '--device', 'cpu', '--quick', '--out', out], {
    encoding: 'utf8',
    env: { ...process.env, PYTHON },
    timeout: 1_500_000, // a native build on 2 shared cores: minutes; this limit is for hangs
  });
}, 1_600_000);

const json = <T>(f: string): T => JSON.parse(readFileSync(join(out, f), 'utf8')) as T;

describe('scripts/gpu-check.sh --device cpu --quick', () => {
  it('runs every step and says so in summary.json', () => {
    expect(run.status, `${String(run.stdout).slice(-2000)}\n${String(run.stderr).slice(-2000)}`).toBe(0);
    const s = json<{ ok: boolean; device: string; steps: Record<string, { rc: number }> }>('summary.json');
    expect(s).toMatchObject({ ok: true, device: 'cpu' });
    expect(Object.keys(s.steps)).toEqual(['build', 'tests', 'compare', 'bench']);
    for (const st of Object.values(s.steps)) expect(st.rc).toBe(0);
  });

  it('builds its own binary and keeps it', () => {
    expect(existsSync(join(out, 'robust-synth.node'))).toBe(true);
    expect(json<{ torchVersion: string; variant: string }>('binary.json')).toMatchObject({ torchVersion: expect.stringMatching(/^\d+\.\d+/), variant: 'cpu' });
    expect(readFileSync(join(out, 'build.log'), 'utf8')).toMatch(/Found Torch/);
  });

  it('ran the tests on the device with the built binary', () => {
    const log = readFileSync(join(out, 'tests.log'), 'utf8');
    expect(log).toMatch(/Test Files\s+.*2 passed/);
    expect(log).not.toMatch(/failed/);
  });

  it('compares the CPU with itself exactly, at one fixed thread count, and reports bf16', () => {
    type Row = { model: string; bf16: boolean; threads: number; maxAbsDiff: number; predictionsAgree: boolean; limit: number | null };
    const c = json<{ ok: boolean; limit: number; threads: { fixed: number; policy: { mode: string; current: number; max: number } }; rows: Row[] }>('compare.json');
    expect(c.ok).toBe(true);
    // The same code, inputs and thread count: the same bits (a GPU keeps its 1e-3 limit).
    expect(c.limit).toBe(0);
    expect(c.threads.fixed).toBe(1);
    expect(c.threads.policy).toMatchObject({ mode: 'fixed', max: 1 });
    expect(c.rows.map((r) => `${r.model}/${r.bf16}`)).toEqual(['fashion-robust/false', 'fashion-robust/true', 'resnet50/false', 'resnet50/true']);
    for (const r of c.rows) expect(r.threads, `${r.model}/${r.bf16}`).toBe(1);
    for (const r of c.rows.filter((r) => !r.bf16)) {
      expect(r.maxAbsDiff, r.model).toBe(0);
      expect(r.predictionsAgree, r.model).toBe(true);
      expect(r.limit).toBe(0);
    }
    // bf16 against the fp32 reference: reported, not judged; a difference shows that bf16 really ran.
    for (const r of c.rows.filter((r) => r.bf16)) {
      expect(r.limit).toBeNull();
      expect(r.maxAbsDiff, r.model).toBeGreaterThan(0);
    }
  });

  it('benchmarks native against eager PyTorch at each batch, fp32 and bf16', () => {
    type Row = { batch: number; bf16: boolean; nativeMs: number; eagerMs: number | null; nativeImageStepsPerS: number; eagerImageStepsPerS: number | null; nativeOverEager: number | null };
    const b = json<{ device: string; steps: number; rows: Row[] }>('bench.json');
    expect(b).toMatchObject({ device: 'cpu', steps: 3 });
    expect(b.rows.map((r) => `${r.batch}/${r.bf16}`)).toEqual(['1/false', '1/true', '2/false', '2/true']);
    for (const r of b.rows) {
      const what = `batch ${r.batch} bf16 ${r.bf16}`;
      // A ResNet50 step on a CPU: at least a millisecond, at most a minute (a hang or a unit slip fails).
      expect(r.nativeMs, what).toBeGreaterThanOrEqual(1);
      expect(r.nativeMs, what).toBeLessThan(60_000);
      expect(r.eagerMs, what).not.toBeNull();
      expect(r.eagerMs!, what).toBeGreaterThanOrEqual(1);
      expect(r.eagerMs!, what).toBeLessThan(60_000);
      // The derived columns are what the raw ones say.
      expect(r.nativeImageStepsPerS, what).toBeCloseTo((r.batch * 1000) / r.nativeMs, 6);
      expect(r.eagerImageStepsPerS!, what).toBeCloseTo((r.batch * 1000) / r.eagerMs!, 6);
      expect(r.nativeOverEager!, what).toBeCloseTo(r.eagerMs! / r.nativeMs, 6);
    }
  });
});
