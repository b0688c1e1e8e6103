/**
 * Planning a submission: the model as the submitter knows it (name, hash, shape, classes), the
 * settings resolved now (no defaults left to workers), and the jobs: one per source image for
 * translate, one per run of seeds for generate, with the output names a single-machine run gives.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { RobustSynthError } from '../errors.js';
import { IMAGE_FILE } from '../images.js';
import { slug } from '../manifest.js';
import { modelsDir, readCard, resolveModel, sha256File, type ModelCard } from '../models.js';
import type { SeedKind } from '../seeds.js';
import { defaultSettings, type TaskName } from '../tasks/common.js';
import * as is from '../validate.js';
import {
  checkModelName, JOB_VERSION, jobId, sha256Hex,
  type GenerateJobData, type JobSettings, type JobData, type QueueTask, type TranslateJobData,
} from './jobs.js';

/** A model as the submitter knows it: by name, with the hash and shape jobs carry. */
export interface ModelRef {
  name: string;
  sha256: string;
  shape: [number, number, number];
  classes: string[];
  card?: ModelCard;
}

/**
 * Resolves a model name the way workers will (the embedded models, then `modelDirs`), for its
 * card: hash, shape, classes. A card without sha256 means hashing the file here.
 */
export async function resolveModelRef(name: string, o: { modelDirs?: string[]; inputShape?: [number, number, number] } = {}): Promise<ModelRef> {
  checkModelName(name, '--model');
  const resolved = resolveModel(name, o.modelDirs ?? []);
  const card = resolved.card ?? readCard(resolved.path);
  const shape = o.inputShape ?? card?.inputShape;
  if (!shape) throw new RobustSynthError('ERR_BAD_INPUT', `${name} has no model card: give its input shape (--input-shape C,H,W)`);
  return { name, sha256: card?.sha256 ?? (await sha256File(resolved.path)), shape, classes: card?.classes ?? [], card };
}

export interface SettingsOverrides {
  eps?: number;
  step?: number;
  iterations?: number;
  batch?: number;
  bf16?: boolean;
}

/** The task's settings at the model's shape with the overrides, all resolved now (as the single-machine commands resolve them). */
export function resolveJobSettings(task: QueueTask, shape: [number, number, number], o: SettingsOverrides): JobSettings {
  const s = defaultSettings(task as TaskName, shape);
  const [, h, w] = shape;
  return {
    eps: o.eps === undefined ? s.eps : is.finiteNumber('eps', o.eps, { min: 0 }),
    step: o.step === undefined ? s.step : is.finiteNumber('step', o.step, { min: 0 }),
    iterations: o.iterations === undefined ? s.iterations : is.integer('iterations', o.iterations, { min: 0, max: 1e7 }),
    constraint: s.constraint,
    useBest: s.useBest,
    bf16: o.bf16 ?? false,
    batch: is.integer('batch', o.batch ?? (h * w <= 64 * 64 ? 64 : 8), { min: 1, max: 1 << 20 }),
  };
}

/** One job to submit: its id and outputs now, its data (image bytes included) when it is added. */
export interface PlannedJob {
  id: string;
  task: QueueTask;
  /** The submission whose results stream gets the outputs. */
  submission: string;
  /** --shared: the directory the workers write into themselves. */
  out?: string;
  files: string[];
  source: string;
  data(): Promise<JobData>;
}

export { IMAGE_FILE };

/** The source files of --image FILE|DIR, as the translate command lists them. */
export function listImages(src: string): { files: string[]; single: boolean } {
  if (!existsSync(src)) throw new RobustSynthError('ERR_BAD_IMAGE', `not found: ${src}`);
  const single = !statSync(src).isDirectory();
  if (single) return { files: [src], single };
  const files = readdirSync(src).filter((f) => IMAGE_FILE.test(f)).sort().map((f) => join(src, f));
  return { files, single };
}

/**
 * One translate job per source file. Files that cannot be read, or are larger than
 * `maxImageBytes`, are skipped with a reason; files that read but do not decode become jobs
 * and fail on the worker with ERR_BAD_IMAGE, alone.
 */
export function planTranslate(o: {
  model: ModelRef;
  files: string[];
  to: number;
  settings: JobSettings;
  submission: string;
  /** --shared only: the directory the workers write into. */
  out?: string;
  maxImageBytes?: number;
}): { jobs: PlannedJob[]; skipped: Array<{ path: string; reason: string }> } {
  const max = o.maxImageBytes ?? 16 << 20;
  const className = o.model.classes[o.to] ?? String(o.to);
  const jobs: PlannedJob[] = [];
  const skipped: Array<{ path: string; reason: string }> = [];
  const names = new Set<string>();
  for (const path of o.files) {
    let bytes: Buffer;
    try {
      if (statSync(path).size > max) throw new Error(`larger than ${max} bytes`);
      bytes = readFileSync(path);
    } catch (e) {
      skipped.push({ path, reason: (e as Error).message });
      continue;
    }
    const file = `${basename(path, extname(path))}-to-${slug(className)}.png`;
    if (names.has(file)) {
      skipped.push({ path, reason: `another source also makes ${file}` });
      continue;
    }
    names.add(file);
    const base: Omit<TranslateJobData, 'image'> = {
      v: JOB_VERSION, task: 'translate', model: o.model.name, modelSha256: o.model.sha256, shape: o.model.shape,
      settings: o.settings, submission: o.submission, ...(o.out === undefined ? {} : { out: o.out }), files: [file], source: path, to: o.to, imageSha256: sha256Hex(bytes),
    };
    const id = jobId({ ...base, image: '' });
    jobs.push({
      id, task: 'translate', submission: o.submission, out: o.out, files: [file], source: path,
      async data() {
        const now = readFileSync(path);
        if (sha256Hex(now) !== base.imageSha256) throw new RobustSynthError('ERR_BAD_IMAGE', `${path} changed while it was being submitted`);
        return { ...base, image: now.toString('base64') };
      },
    });
  }
  return { jobs, skipped };
}

/**
 * Generation jobs: per class, its `count` seeds in runs of `perJob`. Output names and seeds are
 * those of the single-machine generate command (`CLASS-SEED-i.png`, i counting over all classes).
 */
export function planGenerate(o: {
  model: ModelRef;
  classes: number[];
  count: number;
  seed: SeedKind;
  randomSeed: number;
  perJob: number;
  settings: JobSettings;
  submission: string;
  out?: string;
}): PlannedJob[] {
  const count = is.integer('count', o.count, { min: 1, max: 100_000 });
  const perJob = is.integer('perJob', o.perJob, { min: 1, max: o.settings.batch });
  const randomSeed = is.integer('randomSeed', o.randomSeed, { min: 0, max: 2 ** 31 });
  if (o.seed !== 'uniform') {
    const dataset = o.model.card?.dataset;
    if (!dataset || !existsSync(join(modelsDir(), `${dataset}.seeds`))) {
      throw new RobustSynthError('ERR_BAD_INPUT', `seed '${o.seed}' needs fitted seed statistics for ${o.model.name}, which workers find only for the embedded models; use --seed uniform`);
    }
  }
  const classes = Array.from(new Set(o.classes));
  const jobs: PlannedJob[] = [];
  classes.forEach((k, ci) => {
    for (let start = 0; start < count; start += perJob) {
      const end = Math.min(count, start + perJob);
      const files = Array.from({ length: end - start }, (_, j) => `${slug(o.model.classes[k] ?? String(k))}-${o.seed}-${ci * count + start + j}.png`);
      const data: GenerateJobData = {
        v: JOB_VERSION, task: 'generate', model: o.model.name, modelSha256: o.model.sha256, shape: o.model.shape,
        settings: o.settings, submission: o.submission, ...(o.out === undefined ? {} : { out: o.out }), files, source: `seed:${o.seed}`, class: k, seed: o.seed, randomSeed, start, end,
      };
      jobs.push({ id: jobId(data), task: 'generate', submission: o.submission, out: o.out, files, source: data.source, data: async () => data });
    }
  });
  return jobs;
}
