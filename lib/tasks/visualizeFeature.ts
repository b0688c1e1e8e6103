/**
 * Feature visualization: what a unit of the representation encodes. PGD maximizes one unit of
 * the classifier's features() from noise (or from given images), in a ball wide enough not to
 * bind (docs/algorithm.md, "The feature objectives").
 *
 * This file also holds what the feature tasks share (paintFeature, invert): a batched driver of
 * Classifier.pgd that adds the objective to each batch, the noise start, and the reads of a unit
 * and of a representation distance.
 */
import type { Classifier } from '../classifier.js';
import { RobustSynthError } from '../errors.js';
import { rng } from '../seeds.js';
import { checkBatch, concat, slice, type ImageBatch } from '../tensor.js';
import * as is from '../validate.js';
import { checkClassifier, COMMON_KEYS, resolveSettings, runBatched, type CommonTaskOptions, type TaskResult } from './common.js';

export interface VisualizeFeatureOptions extends CommonTaskOptions {
  /** The unit(s) of features() to maximize; every unit is run from every start. */
  feature: number | number[];
  /** Start images (default: noise, `count` per unit). */
  image?: ImageBatch;
  /** Noise starts per unit when no image is given (default 1). */
  count?: number;
  /** Seed of the noise start (default 0). */
  randomSeed?: number;
}

export interface FeatureTaskResult extends TaskResult {
  /** The unit each image maximizes. */
  features: Int32Array;
  /** That unit's value in features() at the start and in the result. */
  before: Float32Array;
  after: Float32Array;
}

/** The per-batch objective the feature tasks add to each clf.pgd call. */

/**
 * The robustness library's noise start for feature tasks: N(0.5, (1/20)^2) per pixel, clamped
 * to [0, 1], seeded.
 */
export function noiseStart(n: number, [c, h, w]: [number, number, number], seed = 0): ImageBatch {
  const { normal } = rng(seed + 1);
  const data = new Float32Array(n * c * h * w);
  for (let i = 0; i < data.length; i++) data[i] = Math.min(1, Math.max(0, 0.5 + normal() / 20));
  return { data, shape: [n, c, h, w] };
}

/** The units a task option names: integers >= 0, below the representation size when the card tells it. */
export function featureList(clf: Classifier, name: string, v: unknown): number[] {
  const list = Array.isArray(v) ? v : [v];
  if (list.length === 0) throw is.invalid(name, 'a unit index or a non-empty list of them', v);
  const size = representationSize(clf);
  return list.map((f, i) => is.integer(Array.isArray(v) ? `${name}[${i}]` : name, f, { min: 0, max: size === undefined ? Number.MAX_SAFE_INTEGER : size - 1 }));
}

/** The size of features() as the model card records it (undefined without a card). */
export function representationSize(clf: Classifier): number | undefined {
  const size = (clf.card?.representation as { size?: unknown } | undefined)?.size;
  return typeof size === 'number' ? size : undefined;
}

/**
 * The layout of features() when the card gives one: [channels, height, width] for a flattened
 * feature map (unit = channel * height * width + row * width + column). Undefined otherwise.
 */
export function representationShape(clf: Classifier): [number, number, number] | undefined {
  const r = clf.card?.representation as { size?: unknown; shape?: unknown } | undefined;
  const s = r?.shape;
  if (!Array.isArray(s) || s.length !== 3 || !s.every((v) => Number.isInteger(v) && v > 0)) return undefined;
  const [c, h, w] = s as [number, number, number];
  return typeof r?.size === 'number' && r.size !== c * h * w ? undefined : [c, h, w];
}

/**
 * n units spread evenly over a representation of size d, to show what it encodes. For a
 * flattened feature map (the card's representation.shape), n channels spread evenly, each at the
 * map's centre: a corner unit sees only a corner of the image.
 */
export function spreadUnits(clf: Classifier, n: number, d: number): number[] {
  const shape = representationShape(clf);
  if (shape && shape[0] * shape[1] * shape[2] === d) {
    const [c, h, w] = shape;
    const k = Math.min(n, c);
    const centre = Math.floor(h / 2) * w + Math.floor(w / 2);
    return Array.from({ length: k }, (_, i) => Math.floor((i * c) / k) * h * w + centre);
  }
  const k = Math.min(n, d);
  return Array.from({ length: k }, (_, i) => Math.floor((i * d) / k));
}

/** Column `units[i]` of row i of features(x). */
export async function unitValues(clf: Classifier, x: ImageBatch, units: ArrayLike<number>, batch = 256): Promise<Float32Array> {
  const n = x.shape[0];
  const out = new Float32Array(n);
  for (let s = 0; s < n; s += batch) {
    const f = await clf.features(slice(x, s, Math.min(n, s + batch)));
    const d = f.shape[1];
    for (let i = 0; i < f.shape[0]; i++) out[s + i] = f.data[i * d + units[s + i]!]!;
  }
  return out;
}

/** features() of a batch, in chunks of `batch`. */
export async function representation(clf: Classifier, x: ImageBatch, batch = 256): Promise<{ data: Float32Array; shape: [number, number] }> {
  const parts: Float32Array[] = [];
  let d = 0;
  for (let s = 0; s < x.shape[0]; s += batch) {
    const f = await clf.features(slice(x, s, Math.min(x.shape[0], s + batch)));
    d = f.shape[1];
    parts.push(f.data.slice());
  }
  const data = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) data.set(p, off), (off += p.length);
  return { data, shape: [x.shape[0], d] };
}

/** Every unit from every start, unit-major: the starts and the unit of each run. */
export function everyUnitFromEveryStart(units: number[], starts: ImageBatch): { x0: ImageBatch; features: Int32Array } {
  const m = starts.shape[0];
  const x0 = units.length === 1 ? starts : concat(units.map(() => starts));
  return { x0, features: Int32Array.from({ length: units.length * m }, (_, i) => units[Math.floor(i / m)]!) };
}

/**
 * Maximizes each unit in `feature` from each start. `losses` are the loop's, -features(x)[:, unit];
 * `before`/`after` are the unit's values; `targets` is the classifier's class of each start.
 *
 * @example
 * const clf = await Classifier.load('fashion-robust');
 * const r = await visualizeFeature({ classifier: clf, feature: [3, 17], count: 2 });
 */
export async function visualizeFeature(options: VisualizeFeatureOptions): Promise<FeatureTaskResult> {
  if (!is.isObject(options)) throw is.invalid('options', 'object', options);
  is.knownKeys('visualizeFeature options', options, [...COMMON_KEYS, 'feature', 'image', 'count', 'randomSeed']);
  const clf = checkClassifier(options);
  const units = featureList(clf, 'feature', options.feature);
  const [c, h, w] = clf.inputShape;
  if (options.image !== undefined && options.count !== undefined) throw new RobustSynthError('ERR_BAD_INPUT', 'give either image or count, not both');
  const count = is.integer('count', options.count ?? 1, { min: 1, max: 100_000 });
  const randomSeed = is.integer('randomSeed', options.randomSeed ?? 0, { min: 0, max: 2 ** 31 });
  const starts = options.image !== undefined ? checkBatch('image', options.image, { c, h, w }) : noiseStart(count, clf.inputShape, randomSeed);
  const settings = resolveSettings('visualizeFeature', options);
  const { x0, features } = everyUnitFromEveryStart(units, starts);
  const targets = await clf.predict(x0);
  const r = await runBatched('visualizeFeature', { ...options, classifier: clf }, settings, x0, targets, (s) => ({ feature: { index: features[s]! } }), features);
  return { ...r, features, before: await unitValues(clf, x0, features), after: await unitValues(clf, r.images, features) };
}
