/** Super-resolution: block-average down, nearest-neighbour up, then PGD toward the label. */
import sharp from 'sharp';
import type { ClassRef } from '../classifier.js';
import { toRaw } from '../images.js';
import { blockAverage } from '../seeds.js';
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

/** The bicubic baseline: block average by f, then bicubic upsampling back to the full size (sharp). */
export async function bicubic(image: ImageBatch, f: number): Promise<ImageBatch> {
  const [n, c, h, w] = image.shape;
  const lh = h / f;
  const lw = w / f;
  const out = new Float32Array(image.data.length);
  for (let i = 0; i < n; i++) {
    const low = new Float32Array(c * lh * lw);
    blockAverage(image.data.subarray(i * c * h * w, (i + 1) * c * h * w), [c, h, w], f, low);
    const raw = toRaw({ data: low, shape: [1, c, lh, lw] }, 0);
    // sharp hands back 3 channels for a 1-channel raw input: read with its stride, not ours.
    const { data: up, info } = await sharp(raw.data, { raw: { width: lw, height: lh, channels: raw.channels } })
      .resize(w, h, { kernel: 'cubic' })
      .raw()
      .toBuffer({ resolveWithObject: true });
    for (let p = 0; p < h * w; p++) for (let ch = 0; ch < c; ch++) out[i * c * h * w + ch * h * w + p] = up[p * info.channels + ch]! / 255;
  }
  return { data: out, shape: image.shape };
}
