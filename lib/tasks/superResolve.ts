/** Super-resolution: block-average down, nearest-neighbour up, then PGD toward the label. */
import type { ClassRef } from '../classifier.js';
import { checkBatch, type ImageBatch } from '../tensor.js';
import * as is from '../validate.js';
import { checkClassifier, classList, COMMON_KEYS, resolveSettings, runBatched, type CommonTaskOptions, type TaskResult } from './common.js';

export interface SuperResolveOptions extends CommonTaskOptions {
  /** Images at the model's resolution; they are reduced by `factor` first, as in the study. */
  image: ImageBatch;
  /** Integer reduction factor (default 8 at 224x224, 4 at 28x28). Edge blocks may be partial. */
  factor?: number;
  /** Class of each image (default: the classifier's prediction on the low-res start). */
  label?: ClassRef | ClassRef[];
}

/** Block average by f (partial blocks at the edges average what they hold), then replicate back: the low-res start. */
export function downUp(image: ImageBatch, f: number): ImageBatch {
  const [n, c, h, w] = image.shape;
  const out = new Float32Array(image.data.length);
  for (let plane = 0; plane < n * c; plane++) {
    const base = plane * h * w;
    for (let by = 0; by < h; by += f) {
      for (let bx = 0; bx < w; bx += f) {
        const ye = Math.min(h, by + f);
        const xe = Math.min(w, bx + f);
        let s = 0;
        for (let y = by; y < ye; y++) for (let x = bx; x < xe; x++) s += image.data[base + y * w + x]!;
        const m = s / ((ye - by) * (xe - bx));
        for (let y = by; y < ye; y++) for (let x = bx; x < xe; x++) out[base + y * w + x] = m;
      }
    }
  }
  return { data: out, shape: image.shape };
}

/**
 * @example
 * const r = await superResolve({ classifier: clf, image, factor: 4 });
 */
export async function superResolve(options: SuperResolveOptions): Promise<TaskResult> {
  if (!is.isObject(options)) throw is.invalid('options', 'object', options);
  is.knownKeys('superResolve options', options, [...COMMON_KEYS, 'image', 'factor', 'label']);
  const clf = checkClassifier(options);
  const [c, h, w] = clf.inputShape;
  const image = checkBatch('image', options.image, { c, h, w });
  const factor = is.integer('factor', options.factor ?? (h >= 112 ? 8 : 4), { min: 1, max: Math.max(h, w) });
  const x0 = downUp(image, factor);
  const settings = resolveSettings('superResolve', options);
  const targets = options.label === undefined ? await clf.predict(x0) : classList(clf, 'label', options.label, image.shape[0]);
  return runBatched('superResolve', { ...options, classifier: clf }, settings, x0, targets);
}
