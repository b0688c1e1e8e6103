/**
 * What every part builder of the study shares: the run's context (configuration, data, models,
 * the key of the run) and the small helpers the parts compute their rows with.
 */
import { relative } from 'node:path';
import { psnr, ssim } from '../../eval/metrics.js';
import { RobustSynthError } from '../../errors.js';
import type { SeedModel } from '../../seeds.js';
import type { TaskProgress } from '../../tasks/common.js';
import { concat, slice, type ImageBatch } from '../../tensor.js';
import type { StudyConfig, StudyTask } from '../config.js';
import { readImages, type ImagenetteFolder } from '../data.js';
import type { ModelIdentity, Role, StudyModels } from '../models.js';
import type { PartRecord } from './store.js';

/**
 * Everything outside a part's own settings that changes its results: where and how the compute
 * runs. Two runs that differ here give different images (batch, threads and the engine change
 * the order of floating-point sums; bf16 changes the precision), so a part made under one is
 * not reused under another.
 */
export interface RunKey {
  /** The device the models run on, 'auto' resolved ('cpu', 'cuda:0', ...). */
  device: string;
  /** CPU intra-op threads: a fixed count, or 'auto' (adaptive); null on a GPU. */
  threads: number | 'auto' | null;
  /** Images per native call, PGD and judging alike (the default resolved). */
  batch: number;
  /** 'fp32', or 'bf16-autocast' (--bf16). */
  dtype: 'fp32' | 'bf16-autocast';
  /** The LibTorch the addon runs (version and CPU/CUDA variant). */
  engine: string;
}

export interface StudyContext {
  cfg: StudyConfig;
  data: ImagenetteFolder;
  models: StudyModels;
  ids: Partial<Record<Role, ModelIdentity>>;
  run: RunKey;
  bf16: boolean;
  signal?: AbortSignal;
  /** Imagenette classes of the run, as ImageNet indices. */
  classIdx: number[];
  /** Who judges the images a model made: the third model, else the other one. */
  judgeOf(role: 'robust' | 'standard'): Role;
  /** Who judges the baselines: the third model, else both. */
  baselineJudges: Role[];
  /** The validation images (read once, when a part first needs them), and their key. */
  val(): Promise<{ restore: ValSet; translate: ValSet; notes: string[] }>;
  valKey: unknown;
  /** The fitted seeds, once a part that needs them runs. */
  seeds(): SeedModel | undefined;
  seedsKey: unknown;
}

export interface PartSpec {
  name: string;
  task: StudyTask | 'baselines';
  /** PGD image-steps. */
  steps: number;
  needsSeeds: boolean;
  key: unknown;
  run(ctx: PartContext): Promise<Omit<PartRecord, 'format' | 'name' | 'key' | 'seconds' | 'steps'>>;
}

export interface PartContext {
  /** The part's PNG directory, and its path relative to the output directory. */
  dir: string;
  rel: string;
  onProgress: (p: TaskProgress) => void;
}

export interface ValSet {
  images: ImageBatch;
  labels: Int32Array;
  files: string[];
}

/**
 * The format of the part records' keys: 2 added the run key (device, threads, batch, dtype,
 * engine); 3: a part's images are split into batches of partBatch(run.batch, images).
 */
export const KEY_FORMAT = 3;

/**
 * The device batch of a part of `n` images, given the largest one (`--batch`). The tasks pad a
 * partial batch to full size (lib/tasks/pad.ts), and a padded row costs a whole image-step: at
 * --quick, 10 images in batches of 8 computed 16 rows. From 224x224 ResNet50 batch 4 up, the cost
 * per image is flat on a 2-core CPU (docs/study.md), so of the sizes from half the largest to the
 * largest this takes the one that pads the fewest rows, the larger on a tie: 10 images run as 2 x 5,
 * 20 as 4 x 5, 90 as 15 x 6, 80 as 10 x 8. A part no larger than `max` runs as one batch.
 */
export function partBatch(max: number, n: number): number {
  if (n <= max) return Math.max(1, n);
  let best = max;
  let waste = Math.ceil(n / max) * max - n;
  for (let b = max - 1; b >= Math.ceil(max / 2) && waste > 0; b--) {
    const w = Math.ceil(n / b) * b - n;
    if (w < waste) (best = b), (waste = w);
  }
  return best;
}

/** The key of a part that runs PGD with one model and is judged by another. */
export function modelKey(s: StudyContext, task: StudyTask, role: 'robust' | 'standard') {
  return {
    format: KEY_FORMAT,
    task,
    model: s.ids[role]!.sha256,
    judge: s.ids[s.judgeOf(role)]!.sha256,
    settings: s.cfg.settings[task],
    run: s.run,
  };
}

/** What the tasks take from the study on top of their own options, for a part of `n` images. */
export function taskOptions(s: StudyContext, task: StudyTask, n: number) {
  const t = s.cfg.settings[task];
  return { eps: t.eps, step: t.step, iterations: t.iterations, constraint: t.constraint, useBest: t.useBest, batch: partBatch(s.run.batch, n), bf16: s.bf16, signal: s.signal };
}

export const round = (v: number, d = 4) => (Number.isFinite(v) ? Math.round(v * 10 ** d) / 10 ** d : null);
export const mean = (a: ArrayLike<number>) => {
  let s = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i]!)) (s += a[i]!), n++;
  return n ? s / n : NaN;
};
export { slug } from '../../manifest.js';
export const pad = (i: number) => String(i).padStart(3, '0');

export function judgeLabel(role: Role, ids: Partial<Record<Role, ModelIdentity>>): string {
  return `${role} (${ids[role]!.name})`;
}

/** Mean PSNR and SSIM against the originals, over `region` when given. */
export function quality(x: ImageBatch, ref: ImageBatch, region?: Float32Array): { psnr: number | null; ssim: number | null } {
  const n = x.shape[0];
  return {
    psnr: round(mean(Array.from({ length: n }, (_, i) => psnr(x, ref, i, region))), 2),
    ssim: round(mean(Array.from({ length: n }, (_, i) => ssim(x, ref, i, region)))),
  };
}

/** The first readable validation images of each class: restoration first, then translation. */
export async function loadVal(data: ImagenetteFolder, cfg: StudyConfig, log: (m: string) => void): Promise<{ restore: ValSet; translate: ValSet; notes: string[] }> {
  const R = cfg.restorePerClass;
  const T = cfg.translatePerClass;
  const restore: ValSet[] = [];
  const trans: ValSet[] = [];
  const notes: string[] = [];
  for (const c of data.classes) {
    const r = await readImages(c.val, R + T, (p, why) => {
      notes.push(`skipped ${relative(data.root, p)}: ${why}`);
      log(`skipped ${p}: ${why}`);
    });
    const got = r.files.length;
    if (!got) throw new RobustSynthError('ERR_BAD_INPUT', `no readable validation image for ${c.wnid} (${c.name})`);
    const take = (s: number, e: number): ValSet => ({ images: slice(r.images, s, e), labels: new Int32Array(e - s).fill(c.index), files: r.files.slice(s, e) });
    restore.push(take(0, Math.min(R, got)));
    if (got >= R + T) trans.push(take(R, R + T));
    else {
      trans.push(take(0, Math.min(T, got)));
      notes.push(`${c.name}: only ${got} readable validation image(s); translation reuses the first of them`);
    }
  }
  const join2 = (l: ValSet[]): ValSet => ({ images: concat(l.map((v) => v.images)), labels: Int32Array.from(l.flatMap((v) => Array.from(v.labels))), files: l.flatMap((v) => v.files) });
  return { restore: join2(restore), translate: join2(trans), notes };
}
