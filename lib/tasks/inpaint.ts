/** Inpainting: fill a hole so the image reads as its class, keeping the known pixels. */
import type { ClassRef } from '../classifier.js';
import { RobustSynthError } from '../errors.js';
import { checkBatch, slice, type ImageBatch } from '../tensor.js';
import * as is from '../validate.js';
import { checkClassifier, classList, COMMON_KEYS, resolveSettings, runBatched, type CommonTaskOptions, type TaskResult } from './common.js';

export interface Hole {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface InpaintOptions extends CommonTaskOptions {
  /** Complete images; the hole is cut out of them. */
  image: ImageBatch;
  /** The region to erase (default: 60x60 at 224x224, scaled to the input, centred). */
  hole?: Hole;
  /** Or a mask, 1 on the hole, [n or 1, 1, h, w]. */
  mask?: ImageBatch;
  /** Class each image should read as (default: the classifier's prediction on the complete image). */
  label?: ClassRef | ClassRef[];
  /** Weight of the known-pixel term (default 10, as the reference). */
  penaltyWeight?: number;
}

/** The default hole: 60/224 of the side, centred. */
export function defaultHole(h: number, w: number): Hole {
  const height = Math.max(1, Math.round((60 / 224) * h));
  const width = Math.max(1, Math.round((60 / 224) * w));
  return { x: Math.floor((w - width) / 2), y: Math.floor((h - height) / 2), width, height };
}

export function holeMask(hole: Hole, h: number, w: number): ImageBatch {
  const data = new Float32Array(h * w);
  for (let y = hole.y; y < hole.y + hole.height; y++) for (let x = hole.x; x < hole.x + hole.width; x++) data[y * w + x] = 1;
  return { data, shape: [1, 1, h, w] };
}

/** Fills the masked pixels of each image with the per-channel mean of its known pixels. */
export function fillHole(image: ImageBatch, mask: ImageBatch): ImageBatch {
  const [n, c, h, w] = image.shape;
  const plane = h * w;
  const out = new Float32Array(image.data);
  for (let i = 0; i < n; i++) {
    const m = mask.data.subarray((mask.shape[0] === 1 ? 0 : i) * plane, (mask.shape[0] === 1 ? 1 : i + 1) * plane);
    for (let ch = 0; ch < c; ch++) {
      const base = (i * c + ch) * plane;
      let sum = 0;
      let cnt = 0;
      for (let p = 0; p < plane; p++) if (m[p]! < 0.5) (sum += image.data[base + p]!), cnt++;
      const mean = cnt ? sum / cnt : 0.5;
      for (let p = 0; p < plane; p++) if (m[p]! >= 0.5) out[base + p] = mean;
    }
  }
  return { data: out, shape: image.shape };
}

/**
 * @example
 * const r = await inpaint({ classifier: clf, image, hole: { x: 10, y: 10, width: 8, height: 8 } });
 */
export async function inpaint(options: InpaintOptions): Promise<TaskResult> {
  if (!is.isObject(options)) throw is.invalid('options', 'object', options);
  is.knownKeys('inpaint options', options, [...COMMON_KEYS, 'image', 'hole', 'mask', 'label', 'penaltyWeight']);
  const clf = checkClassifier(options);
  const [c, h, w] = clf.inputShape;
  const image = checkBatch('image', options.image, { c, h, w });
  const n = image.shape[0];
  if (options.hole && options.mask) throw new RobustSynthError('ERR_BAD_INPUT', 'give either hole or mask, not both');
  let mask: ImageBatch;
  if (options.mask) {
    mask = checkBatch('mask', options.mask);
    const [mn, mc, mh, mw] = mask.shape;
    if ((mn !== 1 && mn !== n) || mc !== 1 || mh !== h || mw !== w) {
      throw new RobustSynthError('ERR_BAD_INPUT', `mask has shape [${mask.shape.join(', ')}]; expected [${n} or 1, 1, ${h}, ${w}]`);
    }
  } else {
    const hole = options.hole ?? defaultHole(h, w);
    if (!is.isObject(hole)) throw is.invalid('hole', '{ x, y, width, height }', hole);
    is.integer('hole.x', hole.x, { min: 0, max: w - 1 });
    is.integer('hole.y', hole.y, { min: 0, max: h - 1 });
    is.integer('hole.width', hole.width, { min: 1, max: w - hole.x });
    is.integer('hole.height', hole.height, { min: 1, max: h - hole.y });
    mask = holeMask(hole, h, w);
  }
  const settings = resolveSettings('inpaint', options);
  if (options.penaltyWeight !== undefined) settings.penaltyWeight = is.finiteNumber('penaltyWeight', options.penaltyWeight, { min: 0 });
  const targets = options.label === undefined ? await clf.predict(image) : classList(clf, 'label', options.label, n);
  const x0 = fillHole(image, mask);
  const fullMask: ImageBatch = mask.shape[0] === n ? mask : { data: new Float32Array(n * h * w).map((_, i) => mask.data[i % (h * w)]!), shape: [n, 1, h, w] };
  return runBatched('inpaint', { ...options, classifier: clf }, settings, x0, targets, (start, end) => ({
    penalty: { weight: settings.penaltyWeight ?? 0, mask: slice(fullMask, start, end), reference: slice(x0, start, end) },
  }));
}
