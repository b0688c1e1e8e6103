/**
 * The study at 224x224 (docs/algorithm.md): from a robust and a standard ImageNet ResNet50 and an
 * Imagenette folder, every figure of Santurkar et al. (2019) on Imagenette's 10 classes, with the
 * metrics of `robust-synth eval`, as report.html / report.json / report.md. Resumable by parts
 * (parts/: one builder per task; plan.ts decides which parts run).
 *
 * @example
 * const r = await runStudy({ robust: 'resnet50-robust-l2-3.pt', standard: 'resnet50-standard.pt', data: 'imagenette2', out: 'study', quick: true });
 * console.log(r.files.html);
 */
import { join, relative } from 'node:path';
import { RobustSynthError } from '../errors.js';
import { writeFileAtomic } from '../images.js';
import type { SeedsInfo } from './data.js';
import { readSeedsInfo, studySeeds } from './data.js';
import { netteName } from './judge.js';
import type { RunKey } from './parts/common.js';
import type { PartRecord } from './parts/store.js';
import { studyHole } from './parts/restore.js';
import { planStudy, type StudyOptions } from './plan.js';
import { reportHtml, reportMarkdown } from './report-render.js';
import { buildReport, type StudyReport } from './report.js';

export { studyConfig, studyReference, FULL, QUICK, reducedSettings, STUDY_TASKS } from './config.js';
export type { StudyConfig, StudyTask } from './config.js';
export { discoverImagenette } from './data.js';
export type { StudyReport } from './report.js';
export { planStudy, type StudyOptions, type StudyProgress, type StudyPlan } from './plan.js';

export interface StudyResult {
  report: StudyReport;
  files: { html: string; json: string; md: string };
  ran: string[];
  skipped: string[];
}

/** Where and how the parts compute, and why in that dtype. */
function computeLine(run: RunKey, asked: boolean | undefined): string {
  const dtype =
    run.dtype === 'fp32'
      ? `fp32${asked === undefined ? (run.device === 'cpu' ? ' (this CPU has no native bf16; --bf16 for bf16 autocast)' : ' (--bf16 for bf16 autocast)') : ''}`
      : `bf16 autocast${asked === undefined ? ' (this CPU computes bf16 natively; --fp32 for fp32)' : ''}`;
  return `${run.device}, ${run.threads === null ? '' : `${run.threads} threads, `}batches of up to ${run.batch} images, ${dtype}, ${run.engine}`;
}

export async function runStudy(options: StudyOptions): Promise<StudyResult> {
  const t0 = performance.now();
  const log = (m: string) => options.onLog?.(m);
  const plan = await planStudy(options);
  const { cfg, out, data, models, ids, store, parts, todo } = plan;
  const records = new Map<string, PartRecord>(plan.finished);
  const stepsTotal = todo.reduce((a, p) => a + p.steps, 0);
  log(
    `plan: ${parts.length} parts, ${todo.length} to run (${stepsTotal} PGD image-steps), ${parts.length - todo.length} finished earlier` +
      (cfg.reductions.length ? `; ${options.quick ? '--quick' : 'reduced'}: ${cfg.reductions.join('; ')}` : ''),
  );
  const compute = computeLine(plan.context.run, options.bf16);
  log(`compute: ${compute}`);
  for (const p of parts) if (records.has(p.name)) log(`skipped ${p.name}: finished earlier with the same settings (${relative(out, store.file(p.name))})`);

  let seedsInfo: SeedsInfo | undefined;
  try {
    if (todo.some((p) => p.needsSeeds)) {
      const r = await studySeeds(data, { dir: join(out, 'seeds'), perClass: cfg.seedImagesPerClass, factor: cfg.seedFactor, classNames: imagenetClassNames(), onLog: log, signal: options.signal });
      plan.setSeeds(r.seeds);
      seedsInfo = r.info;
    }
    let stepsDone = 0;
    const tWork = performance.now();
    for (const [k, p] of todo.entries()) {
      if (options.signal?.aborted) throw new RobustSynthError('ERR_ABORTED', 'the job was aborted');
      log(`running ${p.name} (${k + 1}/${todo.length}; ${p.steps} PGD image-steps): ${store.whyRun(p.name, p.key)}`);
      const tp = performance.now();
      const dir = store.begin(p.name);
      const base = stepsDone;
      const emit = (partSteps: number, loss?: number) => {
        const done = base + Math.min(partSteps, p.steps);
        const elapsedMs = performance.now() - tWork;
        options.onProgress?.({
          part: p.name,
          partIndex: k + 1,
          partsToRun: todo.length,
          stepsDone: done,
          stepsTotal,
          elapsedMs,
          etaMs: done > 0 ? (elapsedMs / done) * (stepsTotal - done) : undefined,
          loss,
        });
      };
      emit(0);
      const iters = p.task === 'baselines' ? 0 : cfg.settings[p.task].iterations;
      const res = await p.run({
        dir,
        rel: relative(out, dir).split('\\').join('/'),
        onProgress: (tp2) => emit(tp2.done * iters + tp2.step * tp2.inBatch, tp2.loss),
      });
      stepsDone += p.steps;
      emit(p.steps);
      const record: PartRecord = { format: 'robust-synth-study-part/1', name: p.name, key: p.key, seconds: Math.round((performance.now() - tp) / 100) / 10, steps: p.steps, ...res };
      store.save(record);
      records.set(p.name, record);
      log(`finished ${p.name} in ${record.seconds} s${p.steps ? ` (${((record.seconds * 1000) / p.steps).toFixed(0)} ms per image-step, judging included)` : ''}`);
    }
  } finally {
    await models.dispose();
  }
  const status: StudyReport['parts'] = parts.map((p) => {
    const r = records.get(p.name)!;
    return { name: p.name, status: todo.includes(p) ? 'ran' : 'skipped', seconds: r.seconds, steps: r.steps };
  });

  seedsInfo ??= readSeedsInfo(join(out, 'seeds'));
  const report = buildReport({
    out,
    mode: options.quick ? 'quick' : 'full',
    cfg,
    data,
    ids,
    judging: models.has('judge') ? 'judge' : 'cross',
    seeds: seedsInfo ?? null,
    seedsFile: join(out, 'seeds', 'imagenette-224.seeds'),
    records,
    parts: status,
    valNotes: await plan.valNotes(),
    hole: studyHole(),
    compute,
    seconds: Math.round((performance.now() - t0) / 100) / 10,
  });
  const files = { json: join(out, 'report.json'), md: join(out, 'report.md'), html: join(out, 'report.html') };
  writeFileAtomic(files.json, JSON.stringify(report, null, 2) + '\n');
  writeFileAtomic(files.md, reportMarkdown(report));
  writeFileAtomic(files.html, reportHtml(report));
  return { report, files, ran: todo.map((p) => p.name), skipped: parts.filter((p) => !todo.includes(p)).map((p) => p.name) };
}

/** The 1000 ImageNet class names (the Imagenette ones by name, the rest as their index): what a seed file records. */
function imagenetClassNames(): string[] {
  return Array.from({ length: 1000 }, (_, i) => netteName(i));
}
