// `robust-synth study`, end to end through the command line, on random-weight ResNet50s exported
// from the two checkpoint layouts of the study's real inputs (a MadryLab robustness checkpoint
// and a torchvision state dict) and a small Imagenette-shaped folder of generated JPEGs. The run
// is shrunk with the testing options (3 classes, 1 image per class, 2 PGD steps per task).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildInfo, Classifier, setThreads, threadPolicy } from '../lib/classifier.js';
import { IMAGENETTE, readFashionMnist } from '../lib/datasets.js';
import { discoverImagenette } from '../lib/study/data.js';
import { FULL, QUICK, studyConfig } from '../lib/study/config.js';
import { netteColumns, verdict } from '../lib/study/judge.js';
import { cpuFlags } from '../binding/cpu.js';
import { partBatch } from '../lib/study/parts/common.js';
import { PartStore, stableJson } from '../lib/study/parts/store.js';
import { planStudy, type StudyOptions } from '../lib/study/plan.js';
import { REFERENCE_224 } from '../lib/tasks/common.js';
import { psnr } from '../lib/eval/metrics.js';
import { readImage } from '../lib/images.js';
import { defaultHole, holeMask } from '../lib/tasks/inpaint.js';
import { makeImagenette } from './fixtures/imagenette.js';
import { python, tempDir } from './helpers.js';

const ROOT = join(import.meta.dirname, '..');
const CLI = join(ROOT, 'lib/cli/index.ts');
const NAMES = new Set(IMAGENETTE.map((c) => c.name));
const TINY = ['--quick', '--iterations', '2', '--per-class', '1', '--classes', '3'];

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Run {
  const r = spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', timeout: 400_000, cwd: ROOT });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every PNG under a directory. */
function pngs(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.png'))
    .map((f) => join(dir, f));
}

describe('robust-synth study', () => {
  let models = '';
  let data = '';
  let out = '';
  let first: Run;
  let dir = '';

  beforeAll(async () => {
    dir = tempDir('rs-study-');
    models = join(dir, 'models');
    data = join(dir, 'imagenette2');
    out = join(dir, 'out');
    // Random ResNet50s: the robust one from a MadryLab checkpoint (the fixture's module tree of
    // the robustness library, saved as train.py does), the standard one from a torchvision state dict.
    python([join(ROOT, 'test/fixtures/study_models.py'), models], 300_000);
    await makeImagenette(data, { classes: 4, train: 3, val: 2 });
    first = cli(['study', '--robust', join(models, 'robust.pt'), '--standard', join(models, 'standard.pt'), '--data', data, ...TINY, '--out', out]);
  }, 600_000);

  // Two ResNet50s (200 MB): not left behind in the temp directory.
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('exports the two layouts as a robust and a standard ImageNet model', () => {
    const robust = JSON.parse(readFileSync(join(models, 'robust.json'), 'utf8'));
    const standard = JSON.parse(readFileSync(join(models, 'standard.json'), 'utf8'));
    expect(robust).toMatchObject({ robust: true, eps: 3, weights: 'madrylab-robustness', inputShape: [3, 224, 224] });
    expect(robust.sourceLayout).toMatchObject({ entry: 'model', weights: 'module.model.*', normalization: 'module.normalizer.new_mean/new_std' });
    expect(standard).toMatchObject({ robust: false, weights: 'torchvision', inputShape: [3, 224, 224] });
    expect(robust.classes).toHaveLength(1000);
  });

  it('runs end to end: every section, with progress and an ETA', () => {
    expect(first.status, first.stderr).toBe(0);
    expect(first.stderr).toMatch(/plan: 12 parts, 12 to run \(60 PGD image-steps\)/); // 3 classes x 1 image x 2 steps x 10 PGD parts
    expect(first.stderr).toMatch(/ETA \d/);
    expect(first.stdout).toMatch(/12 part\(s\) ran, 0 skipped/);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    expect(existsSync(join(out, 'report.md'))).toBe(true);
    for (const key of ['generate', 'compare', 'inpaint', 'superResolve', 'translate']) {
      expect(report.sections[key].grids.length, key).toBeGreaterThan(0);
      expect(html).toContain(`<section id="${key}">`);
    }
    // Generation: three seed kinds for the robust model, mvn for the standard one, with the seed-only baseline.
    expect(report.sections.generate.rows.map((r: any) => `${r.model}/${r.seed}`)).toEqual(['robust/uniform', 'robust/normal', 'robust/mvn', 'standard/mvn']);
    for (const r of report.sections.generate.rows) {
      expect(r.images).toBe(3);
      for (const k of ['judgeAgreement', 'selfAgreement', 'seedJudgeAgreement', 'gain', 'judgeConfidence']) expect(typeof r[k], k).toBe('number');
    }
    // Restoration: the baselines (judged by both models, there being no --judge) and both models, with PSNR/SSIM.
    for (const [key, methods] of [['inpaint', ['mean fill (baseline)', 'diffusion fill (baseline)']], ['superResolve', ['nearest (baseline)', 'bicubic (baseline)']]] as const) {
      const rows = report.sections[key].rows;
      expect(rows.filter((r: any) => r.baseline).map((r: any) => r.method)).toEqual([methods[0], methods[0], methods[1], methods[1]]);
      expect(rows.filter((r: any) => !r.baseline).map((r: any) => r.model)).toEqual(['robust', 'standard']);
      for (const r of rows) expect(Number.isFinite(r.psnr) && Number.isFinite(r.ssim)).toBe(true);
    }
    expect(report.config.hole).toEqual({ x: 82, y: 82, width: 60, height: 60 });
    expect(report.config.srFactor).toBe(8);
    expect(report.sections.translate.rows.map((r: any) => [r.model, r.pairs])).toEqual([['robust', 3], ['standard', 3]]);
    // What the page must say: who judges, the 10-logit restriction, the reduced settings.
    expect(report.judging.mode).toBe('cross');
    expect(html).toContain("each model judges the other's images");
    expect(html).toContain('argmax over the 10 Imagenette logits');
    expect(report.config.quick).toBe(true);
    expect(html).toContain('Mode: --quick, reduced from the reference: generate: 2 iterations of step 30 (reference: 60 of 1');
    expect(report.seeds).toMatchObject({ cached: false, factor: 4 });
    expect(report.seeds.sampler).toMatch(/^low-rank/);
    expect(existsSync(join(out, 'seeds', 'imagenette-224.seeds'))).toBe(true);
  });

  it("says who judged each row (each model the other's images, both the baselines), and each figure is what its images' verdicts give", async () => {
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    const name = (role: string) => JSON.parse(readFileSync(join(models, `${role}.json`), 'utf8')).name as string;
    const label = (role: string) => `${role} (${name(role)})`;
    const part = (p: string) => JSON.parse(readFileSync(join(out, 'parts', `${p}.json`), 'utf8')) as { rows: any[]; items: any[] };
    const share = (items: any[], ok: (it: any) => boolean) => Math.round((items.filter(ok).length / items.length) * 1e4) / 1e4;
    const other = (role: string) => (role === 'robust' ? 'standard' : 'robust');

    // Generation: the robust model's images judged by the standard one, and the other way round.
    for (const p of ['generate-robust-uniform', 'generate-robust-normal', 'generate-robust-mvn', 'generate-standard-mvn']) {
      const { rows, items } = part(p);
      const row = rows[0];
      expect(row.judge, p).toBe(label(other(row.model)));
      expect(p.startsWith(`generate-${row.model}-`)).toBe(true);
      expect(items).toHaveLength(3);
      expect(row.images).toBe(3);
      expect(row.judgeAgreement, p).toBe(share(items, (it) => it.judge === it.class));
      expect(row.selfAgreement, p).toBe(share(items, (it) => it.self === it.class));
      expect(row.seedJudgeAgreement, p).toBe(share(items, (it) => it.seedJudge === it.class));
      expect(row.gain, p).toBeCloseTo(row.judgeAgreement - row.seedJudgeAgreement, 4);
      expect(row.perClass.map((c: any) => [c.class, c.judgeAgreement])).toEqual(items.map((it) => [it.class, it.judge === it.class ? 1 : 0]));
      expect(report.sections.generate.rows).toContainEqual(row);
    }

    // Restoration: the baselines judged by both models, each model's result by the other one.
    const hole = holeMask(defaultHole(224, 224), 224, 224).data;
    const read = (f: string) => readImage(join(out, f), { channels: 3, height: 224, width: 224 });
    for (const [key, prefix, tags] of [['inpaint', 'inpaint', ['mean-fill', 'diffusion-fill']], ['superResolve', 'super-resolve', ['nearest', 'bicubic']]] as const) {
      const rows = report.sections[key].rows;
      expect(rows.map((r: any) => [r.method.replace(/ \(.*$/, ''), r.judge])).toEqual([
        [tags[0].replace('-', ' '), label('robust')],
        [tags[0].replace('-', ' '), label('standard')],
        [tags[1].replace('-', ' '), label('robust')],
        [tags[1].replace('-', ' '), label('standard')],
        ['robust', label('standard')],
        ['standard', label('robust')],
      ]);
      const base = part(`${prefix}-baselines`);
      expect(base.rows).toEqual(rows.slice(0, 4));
      for (const r of base.rows) {
        const tag = tags.find((t) => r.method.startsWith(t.replace('-', ' ')))!;
        const role = r.judge.split(' ')[0];
        expect(r.judgeAccuracy, `${key} ${r.method} ${role}`).toBe(share(base.items, (it) => it[`${tag}Judge`][role] === it.class));
      }
      // PSNR of the baselines, recomputed from the PNGs (8-bit: within half a dB), over the hole when inpainting.
      for (const tag of tags) {
        const got = [];
        for (const it of base.items) got.push(psnr(await read(it[tag]), await read(it.original), 0, key === 'inpaint' ? hole : undefined));
        const row = base.rows.find((r) => r.method.startsWith(tag.replace('-', ' ')))!;
        expect(row.psnr, `${key} ${tag}`).toBeCloseTo(got.reduce((a, b) => a + b, 0) / got.length, 0);
      }
      for (const role of ['robust', 'standard']) {
        const { rows: [row], items } = part(`${prefix}-${role}`);
        expect(row.judge).toBe(label(other(role)));
        expect(row.judgeAccuracy, `${key} ${role}`).toBe(share(items, (it) => it.judge === it.class));
        expect(row.selfAccuracy, `${key} ${role}`).toBe(share(items, (it) => it.self === it.class));
      }
    }

    // Translation: judged by the other model, toward the target and from the source.
    for (const role of ['robust', 'standard']) {
      const { rows: [row], items } = part(`translate-${role}`);
      expect(row.judge).toBe(label(other(role)));
      expect(row.pairs).toBe(items.length);
      expect(items.map((it) => [it.from, it.to])).toEqual([['tench', 'English springer'], ['English springer', 'cassette player'], ['cassette player', 'tench']]);
      expect(row.judgeTargetAgreement).toBe(share(items, (it) => it.judge === it.to));
      expect(row.judgeSourceAgreement).toBe(share(items, (it) => it.judge === it.from));
      expect(row.selfTargetAgreement).toBe(share(items, (it) => it.self === it.to));
      expect(row.meanL2).toBeCloseTo(items.reduce((a, it) => a + it.l2, 0) / items.length, 2);
      for (const it of items) {
        expect(it.l2).toBeGreaterThan(0); // each translation moved its source
        expect(it.l2).toBeLessThanOrEqual(row.eps + 1e-3);
      }
    }
  });

  it('labels everything with Imagenette names', () => {
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.data.classes.map((c: any) => c.name)).toEqual(['tench', 'English springer', 'cassette player']);
    for (const key of Object.keys(report.sections)) {
      for (const g of report.sections[key].grids) {
        for (const row of g.rows) {
          for (const label of row.label.split(' → ')) expect(NAMES.has(label), `${key}: ${row.label}`).toBe(true);
          for (const cell of row.cells) {
            if (!cell) continue;
            // "judge: NAME; self: NAME", "robust: NAME, standard: NAME", "seed", or a class name.
            for (const m of cell.caption.matchAll(/(?:judge|self|robust|standard): ([^;,]+)/g)) expect(NAMES.has(m[1]), cell.caption).toBe(true);
          }
        }
      }
    }
    const parts = join(out, 'parts');
    for (const f of readdirSync(parts).filter((f) => f.endsWith('.json'))) {
      for (const it of JSON.parse(readFileSync(join(parts, f), 'utf8')).items) {
        for (const k of ['class', 'self', 'judge', 'seedJudge', 'from', 'to']) if (it[k] !== undefined) expect(NAMES.has(it[k]), `${f}: ${k} ${it[k]}`).toBe(true);
      }
    }
  });

  it('the page loads: every <img> exists, and every image is 224x224', async () => {
    const html = readFileSync(join(out, 'report.html'), 'utf8');
    const srcs = [...html.matchAll(/<img src="([^"]+)"/g)].map((m) => m[1]!);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    const cells = Object.values(report.sections).flatMap((s: any) => s.grids.flatMap((g: any) => g.rows.flatMap((r: any) => r.cells.filter(Boolean))));
    expect(srcs.length).toBe(cells.length);
    expect(srcs.length).toBeGreaterThan(50);
    for (const src of srcs) {
      expect(src.startsWith('parts/'), src).toBe(true);
      expect(existsSync(join(out, src)), src).toBe(true);
    }
    const all = pngs(out);
    expect(all.length).toBeGreaterThanOrEqual(new Set(srcs).size);
    for (const f of all) {
      const m = await sharp(f).metadata();
      expect([m.width, m.height], f).toEqual([224, 224]);
    }
  });

  it('a rerun skips finished parts and says so; a lost part is redone alone', () => {
    const args = ['study', '--robust', join(models, 'robust.pt'), '--standard', join(models, 'standard.pt'), '--data', data, ...TINY, '--out', out];
    const again = cli(args);
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/0 part\(s\) ran, 12 skipped \(finished earlier with the same settings\)/);
    expect(again.stderr).toMatch(/skipped generate-robust-mvn: finished earlier with the same settings/);
    expect(again.stderr).not.toMatch(/seeds: (reading|fitted)/); // no model loaded, no seed fitted
    expect(again.stderr).not.toMatch(/running \S+ \(/); // no part ran (no timing assertion: the machine may be busy)
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    expect(report.parts.every((p: any) => p.status === 'skipped')).toBe(true);
    expect(report.sections.translate.grids[0].rows.length).toBe(3);

    // A part killed before its record was written, and another one's image deleted: only those two run again.
    rmSync(join(out, 'parts', 'translate-standard.json'));
    rmSync(pngs(join(out, 'parts', 'super-resolve-robust'))[0]!);
    const resumed = cli(args);
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/2 part\(s\) ran, 10 skipped/);
    expect(resumed.stderr).toMatch(/running super-resolve-robust \(1\/2; 6 PGD image-steps\): some of its images are missing/);
    expect(resumed.stderr).toMatch(/running translate-standard \(2\/2; 6 PGD image-steps\): not run yet/);
    expect(resumed.stderr).not.toMatch(/seeds: (reading|fitted)/); // only generation needs them
  });

  it('refuses bad input before any work (exit code 2, the flag named)', () => {
    const r1 = cli(['study', '--standard', 'x.pt', '--data', data]);
    expect(r1.status).toBe(2);
    expect(r1.stderr).toMatch(/--robust is required/);
    const r2 = cli(['study', '--robust', join(models, 'robust.pt'), '--standard', join(models, 'standard.pt'), '--data', join(data, 'nope')]);
    expect(r2.status).toBe(2);
    expect(r2.stderr).toMatch(/--data must be a directory/);
    const r3 = cli(['study', '--robust', join(models, 'robust.pt'), '--standard', join(models, 'standard.pt'), '--data', data, '--per-class', '0']);
    expect(r3.status).toBe(2);
    expect(r3.stderr).toMatch(/--per-class must be an integer >= 1 and <= 10000, got 0/);
    const r4 = cli(['study', '--robust', join(models, 'robust.pt'), '--standard', join(models, 'standard.pt'), '--data', data, '--fp32', '--bf16']);
    expect(r4.status).toBe(2);
    expect(r4.stderr).toMatch(/--fp32 and --bf16 exclude each other/);
    const help = cli(['study', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/--robust PATH[\s\S]*--quick[\s\S]*--iterations N/);
  });
});

describe('study pieces', () => {
  it('one folder of WordNet-id folders is split deterministically (every 5th image held out), and says so', async () => {
    const root = tempDir('rs-nette-flat-');
    await makeImagenette(root, { classes: 2, train: 8, val: 2, layout: 'flat', width: 32, height: 24 });
    const d = discoverImagenette(root);
    expect(d.layout).toBe('split');
    expect(d.note).toMatch(/split deterministically.*every 5th image/);
    expect(d.classes.map((c) => [c.name, c.train.length, c.val.length])).toEqual([['tench', 8, 2], ['English springer', 8, 2]]);
    expect(d.classes[0]!.val.map((f) => f.split('/').pop())).toEqual(['n01440764_00004.JPEG', 'n01440764_00009.JPEG']);
    expect(discoverImagenette(root)).toEqual(d); // the same split every time
    expect(() => discoverImagenette(tempDir())).toThrow(/neither train\/ and val\/ folders nor Imagenette WordNet-id folders/);
  });

  it('--quick plans about 10 minutes on a 2-core CPU (105 ms per ResNet50 image-step); the full run keeps the reference settings', () => {
    const steps = (c: typeof QUICK, n = 10) =>
      4 * n * c.generatePerClass * c.settings.generate.iterations +
      2 * n * c.restorePerClass * (c.settings.inpaint.iterations + c.settings.superResolve.iterations) +
      2 * n * c.translatePerClass * (c.translateTo === 'next' ? 1 : n - 1) * c.settings.translate.iterations;
    expect(steps(QUICK)).toBe(4000);
    expect(steps(QUICK) * 0.105).toBeLessThan(8 * 60); // leaves room for loading, judging and the seed fit
    expect(FULL.settings).toEqual({ generate: REFERENCE_224.generate, inpaint: REFERENCE_224.inpaint, superResolve: REFERENCE_224.superResolve, translate: REFERENCE_224.translate });
    expect(studyConfig().reductions).toEqual([]);
    const q = studyConfig({ quick: true });
    expect(q.reductions.join('\n')).toMatch(/generate: 20 iterations of step 3 \(reference: 60 of 1/);
    // Fewer iterations, the same eps and the same longest path (iterations x step).
    for (const t of ['generate', 'inpaint', 'superResolve', 'translate'] as const) {
      expect(q.settings[t].eps).toBe(REFERENCE_224[t].eps);
      expect(q.settings[t].iterations * q.settings[t].step).toBeCloseTo(REFERENCE_224[t].iterations * REFERENCE_224[t].step, 6);
    }
  });

  it('each part splits its images into equal batches no larger than --batch: no padded row at the quick or the full sizes', () => {
    // The tasks pad a partial batch to full size, and a padded row costs a whole image-step.
    const padded = (max: number, n: number) => {
      const b = partBatch(max, n);
      expect(b).toBeLessThanOrEqual(Math.max(max, 1));
      expect(b).toBeGreaterThanOrEqual(Math.min(n, Math.ceil(max / 2)));
      return Math.ceil(n / b) * b - n;
    };
    // Part sizes: generation classes x per class; restoration classes x per class; translation pairs.
    for (const c of [QUICK, FULL]) {
      const pairs = 10 * c.translatePerClass * (c.translateTo === 'next' ? 1 : 9);
      for (const n of [10 * c.generatePerClass, 10 * c.restorePerClass, pairs]) expect(padded(8, n), `${n} images`).toBe(0);
    }
    expect([partBatch(8, 10), partBatch(8, 20), partBatch(8, 90), partBatch(8, 80), partBatch(8, 3), partBatch(16, 90)]).toEqual([5, 5, 6, 8, 3, 15]);
    // Where no size from half the largest up divides the part, the least padding, the larger on a tie.
    expect(partBatch(8, 13)).toBe(7);
    expect(padded(8, 13)).toBe(1);
    for (let n = 1; n <= 200; n++) for (const max of [1, 2, 5, 8, 16]) {
      const w = padded(max, n);
      for (let b = Math.ceil(max / 2); b <= max && n > max; b++) expect(w).toBeLessThanOrEqual(Math.ceil(n / b) * b - n);
    }
  });

  it('predictions use the 10 Imagenette columns of a 1000-class head, or a 10-class model matched by name', () => {
    expect(netteColumns({ numClasses: 1000, classes: [], name: 'x' })).toEqual([0, 217, 482, 491, 497, 566, 569, 571, 574, 701]);
    const shuffled = [...IMAGENETTE].reverse().map((c) => c.name);
    expect(netteColumns({ numClasses: 10, classes: shuffled, name: 'x' })).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(() => netteColumns({ numClasses: 7, classes: [], name: 'x' })).toThrow(/1000 classes/);
  });

  it('verdict: the argmax over the Imagenette columns, as ImageNet indices, with a softmax over those columns', async () => {
    // A 10-class model whose names are not Imagenette's: its columns are taken in Imagenette's order.
    const clf = await Classifier.load('fashion-robust');
    try {
      const x = readFashionMnist('test', { limit: 5 }).images;
      const targets = [0, 217, 482, 491, 3];
      const v = await verdict(clf, x, targets, 2);
      const logits = await clf.logits(x);
      for (let i = 0; i < 5; i++) {
        const row = Array.from(logits.data.subarray(i * 10, i * 10 + 10));
        const best = row.indexOf(Math.max(...row));
        expect(v.preds[i]).toBe(IMAGENETTE[best]!.index);
        const t = IMAGENETTE.findIndex((c) => c.index === targets[i]);
        const z = row.reduce((a, l) => a + Math.exp(l - row[best]!), 0);
        if (t < 0) expect(v.confidence[i]).toBeNaN();
        else expect(v.confidence[i]).toBeCloseTo(Math.exp(row[t]! - row[best]!) / z, 6);
      }
    } finally {
      await clf.dispose();
    }
  });

  it('a part made at another batch, thread count, dtype or device is not reused; the same settings are', async () => {
    // Two model files (never loaded: the plan only hashes them) and a small data folder.
    const root = tempDir('rs-study-key-');
    writeFileSync(join(root, 'robust.pt'), 'robust weights');
    writeFileSync(join(root, 'standard.pt'), 'standard weights');
    await makeImagenette(join(root, 'data'), { classes: 2, train: 2, val: 2, width: 32, height: 24 });
    const base = { robust: join(root, 'robust.pt'), standard: join(root, 'standard.pt'), data: join(root, 'data'), out: join(root, 'out'), quick: true, device: 'cpu' as const, bf16: false };
    const before = threadPolicy();
    try {
      setThreads(1);
      const first = await planStudy({ ...base, batch: 8 });
      expect(first.parts).toHaveLength(12);
      expect(first.todo).toHaveLength(12);
      expect(first.context.run).toMatchObject({ device: 'cpu', threads: 1, batch: 8, dtype: 'fp32' });
      // Every part finished with these settings (the records a run writes, without their images).
      for (const p of first.parts) first.store.save({ format: 'robust-synth-study-part/1', name: p.name, key: p.key, seconds: 1, steps: p.steps, rows: [], items: [], files: [] });
      const todo = async (o: Partial<StudyOptions>) => (await planStudy({ ...base, ...o })).todo.map((p) => p.name);
      expect(await todo({ batch: 8 })).toEqual([]);
      expect(await todo({})).toEqual([]); // the default batch is 8
      expect(await todo({ batch: 4 })).toHaveLength(12);
      expect(await todo({ batch: 8, bf16: true })).toEqual(first.parts.filter((p) => p.task !== 'baselines').map((p) => p.name)); // the baselines run no PGD
      // Without a dtype asked for: bf16 on a CPU with native bf16 (AVX512_BF16 or AMX), else fp32.
      const native = cpuFlags().includes('avx512_bf16') || cpuFlags().includes('amx_bf16');
      expect((await planStudy({ ...base, bf16: undefined, batch: 8 })).context.run.dtype).toBe(native ? 'bf16-autocast' : 'fp32');
      expect(await todo({ batch: 8, bf16: undefined })).toEqual(native ? first.parts.filter((p) => p.task !== 'baselines').map((p) => p.name) : []);
      // 'auto' is the CPU on a machine without CUDA, and reuses the CPU's parts.
      if (!buildInfo().cudaAvailable) expect(await todo({ batch: 8, device: 'auto' })).toEqual([]);
      setThreads(2);
      expect(await todo({ batch: 8 })).toHaveLength(12);
      setThreads('auto');
      expect(await todo({ batch: 8 })).toHaveLength(12);
      expect(first.store.whyRun('generate-robust-mvn', (await planStudy({ ...base, batch: 4 })).parts[2]!.key)).toBe('its settings changed');
      // Another model file is another key.
      writeFileSync(join(root, 'standard.pt'), 'other standard weights');
      expect(await todo({ batch: 8 })).toHaveLength(12);
    } finally {
      setThreads(before.mode === 'auto' ? 'auto' : before.current);
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('who judges: the other model without --judge, the third model for every part with it', async () => {
    const root = tempDir('rs-study-judge-');
    for (const m of ['robust', 'standard', 'judge']) writeFileSync(join(root, `${m}.pt`), `${m} weights`);
    await makeImagenette(join(root, 'data'), { classes: 2, train: 2, val: 2, width: 32, height: 24 });
    const base = { robust: join(root, 'robust.pt'), standard: join(root, 'standard.pt'), data: join(root, 'data'), out: join(root, 'out'), quick: true, device: 'cpu' as const };
    try {
      const cross = await planStudy(base);
      const third = await planStudy({ ...base, judge: join(root, 'judge.pt') });
      const sha = (p: Awaited<ReturnType<typeof planStudy>>, role: 'robust' | 'standard' | 'judge') => p.ids[role]!.sha256;
      expect(new Set([sha(third, 'robust'), sha(third, 'standard'), sha(third, 'judge')]).size).toBe(3);
      const judges = (p: Awaited<ReturnType<typeof planStudy>>) =>
        Object.fromEntries(p.parts.map((x) => [x.name, (x.key as { judge?: string; judges?: string[] }).judge ?? (x.key as { judges: string[] }).judges]));
      expect(judges(cross)).toEqual({
        'generate-robust-uniform': sha(cross, 'standard'),
        'generate-robust-normal': sha(cross, 'standard'),
        'generate-robust-mvn': sha(cross, 'standard'),
        'generate-standard-mvn': sha(cross, 'robust'),
        'inpaint-baselines': [sha(cross, 'robust'), sha(cross, 'standard')],
        'inpaint-robust': sha(cross, 'standard'),
        'inpaint-standard': sha(cross, 'robust'),
        'super-resolve-baselines': [sha(cross, 'robust'), sha(cross, 'standard')],
        'super-resolve-robust': sha(cross, 'standard'),
        'super-resolve-standard': sha(cross, 'robust'),
        'translate-robust': sha(cross, 'standard'),
        'translate-standard': sha(cross, 'robust'),
      });
      for (const [p, j] of Object.entries(judges(third))) expect(j, p).toEqual(p.endsWith('-baselines') ? [sha(third, 'judge')] : sha(third, 'judge'));
      expect([third.context.judgeOf('robust'), third.context.judgeOf('standard'), ...third.context.baselineJudges]).toEqual(['judge', 'judge', 'judge']);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a part is reused only with equal settings, whatever their key order', () => {
    const out = tempDir();
    const store = new PartStore(out);
    store.begin('p');
    store.save({ format: 'robust-synth-study-part/1', name: 'p', key: { a: 1, b: [1, 2] }, seconds: 1, steps: 0, rows: [], items: [], files: [] });
    expect(store.finished('p', { b: [1, 2], a: 1 })).toBeDefined();
    expect(store.finished('p', { a: 2, b: [1, 2] })).toBeUndefined();
    expect(store.whyRun('p', { a: 2 })).toBe('its settings changed');
    expect(stableJson({ b: 1, a: { d: 1, c: 2 } })).toBe('{"a":{"c":2,"d":1},"b":1}');
    expect(statSync(join(out, 'parts', 'p')).isDirectory()).toBe(true);
  });
});
