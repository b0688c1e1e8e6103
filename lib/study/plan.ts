/**
 * The study's plan: its options checked, its models identified (not loaded), and its parts, each
 * with the key of everything its results depend on. A part whose record carries the same key is
 * reused; any other part runs.
 */
import { resolve } from 'node:path';
import { cpuHasBf16 } from '../../binding/cpu.js';
import { buildInfo, threadPolicy, type Device } from '../classifier.js';
import * as is from '../validate.js';
import type { SeedModel } from '../seeds.js';
import { studyConfig, type StudyConfig } from './config.js';
import { discoverImagenette, filesDigest, seedsKey, type ImagenetteFolder } from './data.js';
import { StudyModels, type ModelIdentity, type Role } from './models.js';
import { loadVal, type PartSpec, type RunKey, type StudyContext, type ValSet } from './parts/common.js';
import { generateParts } from './parts/generate.js';
import { restoreParts } from './parts/restore.js';
import { PartStore, type PartRecord } from './parts/store.js';
import { translateParts } from './parts/translate.js';

export interface StudyOptions {
  /** The robust classifier: a path to an exported .pt (or a model name). */
  robust: string;
  /** The standard classifier. */
  standard: string;
  /** A third classifier that judges every image; without it, each model judges the other's images. */
  judge?: string;
  /** The Imagenette folder (DIR/train/<wnid>/, DIR/val/<wnid>/, or DIR/<wnid>/). */
  data: string;
  /** Where the report, the parts and the seed file go. */
  out: string;
  /** About 10 minutes on a 2-core CPU: fewer images and steps (stated on the page). */
  quick?: boolean;
  device?: Device;
  modelDirs?: string[];
  /** Testing: every task's iterations (step scaled to keep the reference's longest path). */
  iterations?: number;
  /** Testing: every per-class image count. */
  perClass?: number;
  /** Testing: only the first N Imagenette classes present. */
  classes?: number;
  /** Training images per class the seeds are fitted on. */
  seedImages?: number;
  /** The largest device batch (default 8); each part splits its images evenly (parts/common.ts partBatch). */
  batch?: number;
  /**
   * bf16 autocast (true) or fp32 (false). Default: bf16 on a CPU that computes bf16 natively
   * (AVX512_BF16 or AMX; there it ran the study 1.8x faster, with images as close to fp32's as two
   * fp32 runs at different batch sizes are: docs/study.md), fp32 elsewhere and on a GPU.
   */
  bf16?: boolean;
  onProgress?: (p: StudyProgress) => void;
  /** One line per event: a part skipped, started, finished; the seeds fitted or reused. */
  onLog?: (message: string) => void;
  signal?: AbortSignal;
}

export interface StudyProgress {
  /** The part now running. */
  part: string;
  /** Its position among the parts that run this time (1-based), and their count. */
  partIndex: number;
  partsToRun: number;
  /** PGD image-steps done and planned (over the parts that run this time). */
  stepsDone: number;
  stepsTotal: number;
  /** Since the first part began. */
  elapsedMs: number;
  /** Remaining time at the rate so far (undefined before the first step). */
  etaMs?: number;
  loss?: number;
}

const OPTION_KEYS = [
  'robust', 'standard', 'judge', 'data', 'out', 'quick', 'device', 'modelDirs', 'iterations', 'perClass', 'classes', 'seedImages', 'batch', 'bf16', 'onProgress', 'onLog', 'signal',
] as const;

/** Images per native call when the options name none (the tasks' default at 224x224). */
export const DEFAULT_BATCH = 8;

export interface StudyPlan {
  cfg: StudyConfig;
  out: string;
  data: ImagenetteFolder;
  models: StudyModels;
  ids: Partial<Record<Role, ModelIdentity>>;
  context: StudyContext;
  store: PartStore;
  /** Every part, in the report's order. */
  parts: PartSpec[];
  /** The records of the parts finished earlier with the same key, by name. */
  finished: Map<string, PartRecord>;
  /** The parts that must run: no record, another key, or images missing. */
  todo: PartSpec[];
  /** The validation images, when a part read them. */
  valNotes(): Promise<string[]>;
  /** Hands the fitted seeds to the parts that need them. */
  setSeeds(seeds: SeedModel): void;
}

/**
 * How the compute runs, as far as it changes results: the device ('auto' resolved), the CPU
 * thread policy now in force (setThreads), the batch, the dtype and the LibTorch.
 */
export function runKey(device: Device, batch: number, bf16: boolean): RunKey {
  const info = buildInfo();
  const resolved = device === 'auto' ? (info.cudaAvailable ? 'cuda:0' : 'cpu') : device === 'cuda' ? 'cuda:0' : device;
  const policy = threadPolicy();
  return {
    device: resolved,
    // A fixed count is `max` (the compute thread applies it at its next job; `current` lags until then).
    threads: resolved === 'cpu' ? (policy.mode === 'fixed' ? policy.max : 'auto') : null,
    batch,
    dtype: bf16 ? 'bf16-autocast' : 'fp32',
    engine: `libtorch ${info.torchVersion} ${info.variant}`,
  };
}

/** The study's dtype when none is asked for: bf16 where the compute runs on a CPU with native bf16. */
export function defaultBf16(device: Device): boolean {
  const onCpu = device === 'cpu' || (device === 'auto' && !buildInfo().cudaAvailable);
  return onCpu && cpuHasBf16();
}

/** Checks the options, identifies the models and data, and decides which parts must run. Loads no model. */
export async function planStudy(options: StudyOptions): Promise<StudyPlan> {
  if (!is.isObject(options)) throw is.invalid('options', 'object', options);
  is.knownKeys('study options', options, OPTION_KEYS);
  const log = (m: string) => options.onLog?.(m);
  const cfg = studyConfig({ quick: options.quick, iterations: options.iterations, perClass: options.perClass, seedImages: options.seedImages });
  const out = resolve(is.nonEmptyString('out', options.out));
  const dataRoot = resolve(is.nonEmptyString('data', options.data));
  const limitClasses = options.classes === undefined ? undefined : is.integer('classes', options.classes, { min: 1, max: 10 });
  const batch = options.batch === undefined ? DEFAULT_BATCH : is.integer('batch', options.batch, { min: 1, max: 4096 });
  const device = options.device ?? 'auto';
  const bf16 = options.bf16 === undefined ? defaultBf16(device) : is.boolean('bf16', options.bf16);
  const data = discoverImagenette(dataRoot, limitClasses);
  const models = new StudyModels(
    { robust: is.nonEmptyString('robust', options.robust), standard: is.nonEmptyString('standard', options.standard), ...(options.judge !== undefined ? { judge: is.nonEmptyString('judge', options.judge) } : {}) },
    device,
    options.modelDirs ?? [],
  );
  const ids: Partial<Record<Role, ModelIdentity>> = {
    robust: await models.identity('robust'),
    standard: await models.identity('standard'),
    ...(models.has('judge') ? { judge: await models.identity('judge') } : {}),
  };
  let valPromise: Promise<{ restore: ValSet; translate: ValSet; notes: string[] }> | undefined;
  let seeds: SeedModel | undefined;
  const context: StudyContext = {
    cfg,
    data,
    models,
    ids,
    run: runKey(device, batch, bf16),
    bf16,
    signal: options.signal,
    classIdx: data.classes.map((c) => c.index),
    judgeOf: (role) => (models.has('judge') ? 'judge' : role === 'robust' ? 'standard' : 'robust'),
    baselineJudges: models.has('judge') ? ['judge'] : ['robust', 'standard'],
    val: () => (valPromise ??= loadVal(data, cfg, log)),
    // Validation images: the first readable ones of each class, restoration first, then translation.
    valKey: { perClass: cfg.restorePerClass + cfg.translatePerClass, classes: data.classes.map((c) => ({ wnid: c.wnid, digest: filesDigest(data.root, c.val) })) },
    seeds: () => seeds,
    seedsKey: seedsKey(data, cfg.seedImagesPerClass, cfg.seedFactor),
  };
  const parts = [...generateParts(context), ...restoreParts(context), ...translateParts(context)];
  const store = new PartStore(out);
  const finished = new Map<string, PartRecord>();
  for (const p of parts) {
    const r = store.finished(p.name, p.key);
    if (r) finished.set(p.name, r);
  }
  const todo = parts.filter((p) => !finished.has(p.name));
  return {
    cfg,
    out,
    data,
    models,
    ids,
    context,
    store,
    parts,
    finished,
    todo,
    valNotes: async () => (valPromise ? (await valPromise).notes : []),
    setSeeds: (s) => {
      seeds = s;
    },
  };
}
