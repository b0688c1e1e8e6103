/**
 * One playground job: the library task it names, run on a loaded classifier with live
 * previews, and its outputs as the CLI writes them (PNGs at the model's resolution, a
 * manifest.json of the same shape, a contact sheet), kept in memory.
 */
import type { Classifier } from '../classifier.js';
import { manifestEntry, slug, type ManifestEntry } from '../manifest.js';
import { RobustSynthError } from '../errors.js';
import { gridPng, encodePng } from '../images.js';
import type { SeedKind } from '../seeds.js';
import type { CommonTaskOptions, TaskName, TaskProgress, TaskResult } from '../tasks/common.js';
import { sketchFromImage } from '../sketch.js';
import { generate } from '../tasks/generate.js';
import { inpaint } from '../tasks/inpaint.js';
import { invert } from '../tasks/invert.js';
import { paintFeature } from '../tasks/paintFeature.js';
import { sketchToImage } from '../tasks/sketchToImage.js';
import { superResolve } from '../tasks/superResolve.js';
import { translate } from '../tasks/translate.js';
import { visualizeFeature } from '../tasks/visualizeFeature.js';
import type { ImageBatch } from '../tensor.js';
import { withPreviews, type Preview } from './previews.js';

export type Source = { kind: 'example'; index: number } | { kind: 'upload'; id: string };

/** The tasks the playground offers: every task of the library. */
export type PlaygroundTask = TaskName;
export const PLAYGROUND_TASKS: readonly PlaygroundTask[] = [
  'generate', 'inpaint', 'superResolve', 'translate', 'visualizeFeature', 'paintFeature', 'invert', 'sketchToImage',
];
/** The tasks that need a unit of features(). */
export const FEATURE_UNIT_TASKS: readonly PlaygroundTask[] = ['visualizeFeature', 'paintFeature'];
/** The tasks that start from the job's image (visualizeFeature only with from: 'image'). */
export function needsSource(spec: Pick<JobSpec, 'task' | 'from'>): boolean {
  return spec.task === 'visualizeFeature' ? spec.from === 'image' : spec.task !== 'generate';
}

/** A job as the server accepted it (checked in server.ts). */
export interface JobSpec {
  model: string;
  task: PlaygroundTask;
  /**
   * generate: the class to make; translate, sketchToImage: the target; inpaint, superResolve: the
   * label (undefined: the model's prediction).
   */
  classIndex?: number;
  /** generate */
  seed: SeedKind;
  /** generate, and the noise starts of visualizeFeature and invert */
  randomSeed: number;
  /** generate, visualizeFeature from noise */
  count: number;
  /** every task but generate (visualizeFeature only from 'image') */
  source?: Source;
  /** inpaint: 1 on the hole; paintFeature: 1 where to paint. One byte per model pixel (h * w); undefined: the default centred region. */
  mask?: Uint8Array;
  /** visualizeFeature, paintFeature: the unit of features() */
  feature?: number;
  /** visualizeFeature: start from noise (default) or from the image */
  from?: 'noise' | 'image';
  /** superResolve */
  factor?: number;
  iterations?: number;
  eps?: number;
  step?: number;
  /** Previews per run besides the start (previews.ts). */
  previews: number;
}

/** manifest.json entries are the CLI task commands' own. */
export type { ManifestEntry };

export interface JobOutput {
  /** PNGs, contact-sheet.png, then manifest.json. */
  files: Array<{ name: string; type: string; data: Buffer }>;
  entries: ManifestEntry[];
  ms: number;
  steps: number;
}

export interface JobHooks {
  signal: AbortSignal;
  onProgress: (p: TaskProgress) => void;
  onPreview: (p: Preview) => void | Promise<void>;
  /** The job's source image at the model's input shape, and a name for its files. */
  source?: { image: ImageBatch; name: string };
}

function maskBatch(mask: Uint8Array | undefined, h: number, w: number): ImageBatch | undefined {
  if (!mask || !mask.some((v) => v !== 0)) return undefined;
  return { data: Float32Array.from(mask, (v) => (v ? 1 : 0)), shape: [1, 1, h, w] };
}

export async function runJob(spec: JobSpec, clf: Classifier, hooks: JobHooks): Promise<JobOutput> {
  const [, h, w] = clf.inputShape;
  const classifier = withPreviews(clf, { previews: spec.previews, onPreview: hooks.onPreview });
  const common: CommonTaskOptions = {
    classifier,
    iterations: spec.iterations,
    eps: spec.eps,
    step: spec.step,
    signal: hooks.signal,
    onProgress: hooks.onProgress,
  };
  const image = hooks.source?.image;
  const stem = slug(hooks.source?.name ?? 'image');
  const need = (): ImageBatch => {
    if (!image) throw new RobustSynthError('ERR_BAD_INPUT', `${spec.task} needs a source image`);
    return image;
  };
  let r: TaskResult;
  /** File names of the results, of the starts (when worth saving), and each result's source. */
  let names: string[];
  let startNames: string[] = [];
  let sources: string[];
  let sheet: ImageBatch[];
  switch (spec.task) {
    case 'generate': {
      r = await generate({ ...common, classes: [spec.classIndex!], count: spec.count, seed: spec.seed, randomSeed: spec.randomSeed });
      const base = `${slug(clf.classes[spec.classIndex!]!)}-${spec.seed}`;
      names = Array.from(r.targets, (_, i) => `${base}-${i}.png`);
      startNames = names.map((n) => n.replace(/\.png$/, '-seed.png'));
      sources = names.map(() => `seed:${spec.seed}:${spec.randomSeed}`);
      sheet = [r.starts, r.images];
      break;
    }
    case 'inpaint': {
      r = await inpaint({ ...common, image: need(), mask: maskBatch(spec.mask, h, w), label: spec.classIndex });
      names = [`${stem}-inpainted.png`];
      startNames = [`${stem}-masked.png`];
      sources = [hooks.source!.name];
      sheet = [need(), r.starts, r.images];
      break;
    }
    case 'superResolve': {
      r = await superResolve({ ...common, image: need(), factor: spec.factor, label: spec.classIndex });
      names = [`${stem}-super-resolved.png`];
      startNames = [`${stem}-lowres.png`];
      sources = [hooks.source!.name];
      sheet = [r.starts, r.images, need()];
      break;
    }
    case 'translate': {
      r = await translate({ ...common, image: need(), to: spec.classIndex! });
      names = [`${stem}-to-${slug(clf.classes[spec.classIndex!]!)}.png`];
      sources = [hooks.source!.name];
      sheet = [need(), r.images];
      break;
    }
    case 'visualizeFeature': {
      const fromImage = spec.from === 'image';
      r = await visualizeFeature({ ...common, feature: spec.feature!, ...(fromImage ? { image: need() } : { count: spec.count, randomSeed: spec.randomSeed }) });
      const base = fromImage ? `${stem}-unit-${spec.feature}` : `noise-unit-${spec.feature}`;
      names = Array.from(r.targets, (_, i) => (r.targets.length === 1 ? `${base}.png` : `${base}-${i}.png`));
      startNames = fromImage ? [] : names.map((n) => n.replace(/\.png$/, '-start.png'));
      sources = names.map(() => (fromImage ? hooks.source!.name : `noise:${spec.randomSeed}`));
      sheet = [r.starts, r.images];
      break;
    }
    case 'paintFeature': {
      r = await paintFeature({ ...common, image: need(), feature: spec.feature!, mask: maskBatch(spec.mask, h, w) });
      names = [`${stem}-unit-${spec.feature}.png`];
      sources = [hooks.source!.name];
      sheet = [need(), r.images];
      break;
    }
    case 'invert': {
      r = await invert({ ...common, target: need(), randomSeed: spec.randomSeed });
      names = [`${stem}-inverted.png`];
      startNames = [`${stem}-noise.png`];
      sources = [hooks.source!.name];
      sheet = [need(), r.starts, r.images];
      break;
    }
    case 'sketchToImage': {
      r = await sketchToImage({ ...common, sketch: sketchFromImage(need()), to: spec.classIndex! });
      names = [`${stem}-sketch-to-${slug(clf.classes[spec.classIndex!]!)}.png`];
      startNames = [`${stem}-sketch.png`];
      sources = [hooks.source!.name];
      sheet = [need(), r.starts, r.images];
      break;
    }
    default:
      throw new RobustSynthError('ERR_BAD_INPUT', `the playground does not run ${String(spec.task)}`);
  }
  const files: JobOutput['files'] = [];
  const entries: ManifestEntry[] = [];
  for (let i = 0; i < names.length; i++) {
    files.push({ name: names[i]!, type: 'image/png', data: await encodePng(r.images, i) });
    entries.push(manifestEntry(r, i, clf, names[i]!, sources[i]!, spec.model));
  }
  for (let i = 0; i < startNames.length; i++) files.push({ name: startNames[i]!, type: 'image/png', data: await encodePng(r.starts, i) });
  files.push({ name: 'contact-sheet.png', type: 'image/png', data: await gridPng(sheet) });
  files.push({ name: 'manifest.json', type: 'application/json', data: Buffer.from(JSON.stringify({ entries }, null, 2) + '\n') });
  return { files, entries, ms: r.stats.ms, steps: r.stats.steps };
}
