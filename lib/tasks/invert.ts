/**
 * Representation inversion: find an image whose representation is that of a target image.
 * PGD minimizes ||features(x) - features(target)||_2 from noise (or from another image), in a
 * ball wide enough not to bind. With a robust classifier the result looks like the target;
 * with a standard one, like the start with imperceptible noise.
 */
import { RobustSynthError } from '../errors.js';
import { checkBatch, type ImageBatch, type Tensor2D } from '../tensor.js';
import * as is from '../validate.js';
import { checkClassifier, COMMON_KEYS, resolveSettings, runBatched, type CommonTaskOptions, type TaskResult } from './common.js';
import { noiseStart, representation } from './visualizeFeature.js';

export interface InvertOptions extends CommonTaskOptions {
  /** The images whose representations to reach. */
  target: ImageBatch;
  /** Where to start: one image for every target, or one per target (default: noise, N(0.5, 1/20^2)). */
  start?: ImageBatch;
  /** Seed of the noise start (default 0). */
  randomSeed?: number;
}

export interface InvertResult extends TaskResult {
  /** The target images, one per result. */
  targetImages: ImageBatch;
  /**
   * ||features(x) - features(target)||_2 / ||features(target)||_2 of each start and result: the
   * robustness library's normalized inversion loss (the loop minimizes the same distance
   * unnormalized; `losses` are those).
   */
  distanceBefore: Float32Array;
  distanceAfter: Float32Array;
}

/** Per-row ||a_i - b_i|| / ||b_i||. */
export function relativeDistance(a: Tensor2D, b: Tensor2D): Float32Array {
  const [n, d] = a.shape;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let num = 0;
    let den = 0;
    for (let j = 0; j < d; j++) {
      num += (a.data[i * d + j]! - b.data[i * d + j]!) ** 2;
      den += b.data[i * d + j]! ** 2;
    }
    out[i] = den > 0 ? Math.sqrt(num / den) : Math.sqrt(num);
  }
  return out;
}

/**
 * `targets` is the classifier's class of each target image, so `predictions[i] === targets[i]`
 * says whether the inverted image reads as its target's class.
 *
 * @example
 * const r = await invert({ classifier: clf, target: images });            // from noise
 * const s = await invert({ classifier: clf, target: images, start: other }); // from another image
 */
export async function invert(options: InvertOptions): Promise<InvertResult> {
  if (!is.isObject(options)) throw is.invalid('options', 'object', options);
  is.knownKeys('invert options', options, [...COMMON_KEYS, 'target', 'start', 'randomSeed']);
  const clf = checkClassifier(options);
  const [c, h, w] = clf.inputShape;
  const target = checkBatch('target', options.target, { c, h, w });
  const n = target.shape[0];
  const randomSeed = is.integer('randomSeed', options.randomSeed ?? 0, { min: 0, max: 2 ** 31 });
  let x0: ImageBatch;
  if (options.start !== undefined) {
    const start = checkBatch('start', options.start, { c, h, w });
    if (start.shape[0] !== 1 && start.shape[0] !== n) {
      throw new RobustSynthError('ERR_BAD_INPUT', `start has ${start.shape[0]} images; expected one for every target or one per target (${n})`);
    }
    x0 = start.shape[0] === n ? start : { data: new Float32Array(n * start.data.length).map((_, i) => start.data[i % start.data.length]!), shape: [n, c, h, w] };
  } else {
    x0 = noiseStart(n, clf.inputShape, randomSeed);
  }
  const settings = resolveSettings('invert', options);
  const targetRep = await representation(clf, target);
  const d = targetRep.shape[1];
  const targets = await clf.predict(target);
  const r = await runBatched('invert', { ...options, classifier: clf }, settings, x0, targets, (s, e) => ({
    inversion: { target: { data: targetRep.data.subarray(s * d, e * d), shape: [e - s, d] } },
  }));
  return {
    ...r,
    targetImages: target,
    distanceBefore: relativeDistance(await representation(clf, x0), targetRep),
    distanceAfter: relativeDistance(await representation(clf, r.images), targetRep),
  };
}
