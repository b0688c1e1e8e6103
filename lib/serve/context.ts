/**
 * What the playground's routes share: the configured models (by name, never a path), the
 * Fashion-MNIST examples, the uploads, the scheduler, and the limits; and how a request's model
 * name and image source are resolved.
 */
import type { ServerResponse } from 'node:http';
import { basename, extname, resolve } from 'node:path';
import { Classifier } from '../classifier.js';
import { FASHION_EXAMPLES, readFashionExamples, readFashionMnist, type LabeledImages } from '../datasets.js';
import { decodeImage, encodePng } from '../images.js';
import { listModels, modelsDir, readCard, type ModelCard } from '../models.js';
import { representationSize, spreadUnits } from '../tasks/visualizeFeature.js';
import type { ImageBatch } from '../tensor.js';
import * as is from '../validate.js';
import { httpError, logInternal } from './http-errors.js';
import { ModelSlot, Scheduler } from './jobs.js';
import { MAX_UPLOADS, UploadStore, type Upload } from './uploads.js';

/** Fashion-MNIST test images offered as examples: the first EXAMPLE_POOL, two of each class listed. */
export const EXAMPLE_POOL = FASHION_EXAMPLES; // the test images the package ships
export const EXAMPLES_PER_CLASS = 2;

export interface ModelEntry {
  slot: ModelSlot;
  card?: ModelCard;
}

/** A job's image as the server resolved it at submission: an example's index, or the upload itself (its bytes). */
export type ResolvedSource = { kind: 'example'; index: number } | { kind: 'upload'; upload: Upload };

export interface Limits {
  maxUploadBytes: number;
  maxIterations: number;
  maxCount: number;
  maxPreviews: number;
}

export interface Context {
  models: Map<string, ModelEntry>;
  scheduler: Scheduler;
  uploads: UploadStore;
  streams: Set<ServerResponse>;
  limits: Limits;
  /** The examples, or undefined when they are not installed (the reason is logged, not sent). */
  examples(): LabeledImages | undefined;
  model(name: unknown): ModelEntry;
  parseSource(v: unknown, client: string): ResolvedSource;
  sourceImage(source: ResolvedSource, shape: [number, number, number]): Promise<{ image: ImageBatch; name: string }>;
}

const representations = new WeakMap<Classifier, Promise<{ size: number; units: number[] } | null>>();
/**
 * The size of a model's features() (from its card, else measured once on a blank input) and
 * eight units worth showing (spreadUnits); null for a model without features().
 */
export function representationOf(clf: Classifier): Promise<{ size: number; units: number[] } | null> {
  let r = representations.get(clf);
  if (!r) {
    r = (async () => {
      const [c, h, w] = clf.inputShape;
      const size = representationSize(clf) ?? (await clf.features({ data: new Float32Array(c * h * w), shape: [1, c, h, w] })).shape[1];
      return { size, units: spreadUnits(clf, 8, size) };
    })().catch(() => null);
    representations.set(clf, r);
  }
  return r;
}

/** The configured models by name: --model-dir directories first (as name lookup does), then the embedded ones. */
export function configuredModels(dirs: string[], load: (path: string) => Promise<Classifier>): Map<string, ModelEntry> {
  const out = new Map<string, ModelEntry>();
  const embedded = modelsDir();
  const all = listModels(dirs);
  for (const dir of [...dirs.map((d) => resolve(d)), embedded]) {
    for (const m of all) {
      if (resolve(m.path, '..') !== dir) continue;
      const name = basename(m.path, extname(m.path));
      if (out.has(name)) continue;
      out.set(name, { slot: new ModelSlot(name, m.path, () => load(m.path)), card: readCard(m.path) });
    }
  }
  return out;
}

export function createContext(options: {
  models: Map<string, ModelEntry>;
  scheduler: Scheduler;
  limits: Limits;
  fashionMnistDir?: string;
}): Context {
  const { models } = options;
  const uploads = new UploadStore();
  let examples: LabeledImages | undefined;
  let examplesFailed = false;
  const readExamples = (): LabeledImages | undefined => {
    if (examples || examplesFailed) return examples;
    try {
      examples = options.fashionMnistDir ? readFashionMnist('test', { limit: EXAMPLE_POOL, dir: options.fashionMnistDir }) : readFashionExamples(EXAMPLE_POOL);
    } catch (e) {
      examplesFailed = true;
      logInternal('the Fashion-MNIST examples', e);
    }
    return examples;
  };

  const model = (v: unknown): ModelEntry => {
    const name = is.nonEmptyString('model', v);
    const entry = models.get(name);
    if (entry) return entry;
    if (/[/\\]|\.\.|\.pt$/i.test(name) || name.startsWith('~')) {
      throw httpError(400, 'ERR_MODEL_NOT_ALLOWED', `model must be the name of a configured model (${[...models.keys()].join(', ')}); paths are not accepted`);
    }
    throw httpError(404, 'ERR_MODEL_NOT_FOUND', `no model named '${name.slice(0, 100)}'; this server has: ${[...models.keys()].join(', ')}`);
  };

  const parseSource = (v: unknown, client: string): ResolvedSource => {
    if (!is.isObject(v)) throw is.invalid('source', '{ example: INDEX } or { upload: ID }', v);
    if (v.example !== undefined) return { kind: 'example', index: is.integer('source.example', v.example, { min: 0, max: EXAMPLE_POOL - 1 }) };
    if (v.upload !== undefined) {
      const id = is.nonEmptyString('source.upload', v.upload);
      const upload = uploads.get(id, client);
      if (!upload) throw httpError(404, 'ERR_BAD_INPUT', `no upload ${id.slice(0, 64)} (uploads are kept in memory, the latest ${MAX_UPLOADS}; upload the image again)`);
      return { kind: 'upload', upload };
    }
    throw is.invalid('source', '{ example: INDEX } or { upload: ID }', v);
  };

  const sourceImage = async (source: ResolvedSource, shape: [number, number, number]): Promise<{ image: ImageBatch; name: string }> => {
    const [c, h, w] = shape;
    if (source.kind === 'example') {
      const ex = readExamples();
      if (!ex) throw httpError(404, 'ERR_BAD_INPUT', 'the Fashion-MNIST examples are not installed on this server; upload an image instead');
      const plane = 28 * 28;
      const one: ImageBatch = { data: ex.images.data.slice(source.index * plane, (source.index + 1) * plane), shape: [1, 1, 28, 28] };
      const name = `fashion-mnist-test-${source.index}`;
      if (c === 1 && h === 28 && w === 28) return { image: one, name };
      return { image: await decodeImage(await encodePng(one, 0), { channels: c, height: h, width: w }), name };
    }
    const up = source.upload;
    return { image: await decodeImage(up.bytes, { channels: c, height: h, width: w }), name: `upload-${up.name}` };
  };

  return { models, scheduler: options.scheduler, uploads, streams: new Set(), limits: options.limits, examples: readExamples, model, parseSource, sourceImage };
}
