/**
 * Sketch-like images from photographs, for sketch-to-image: edges by the Sobel operator on the
 * grey level, their magnitude scaled to the image's strongest edge, then thresholded and (by
 * default) inverted, so that the sketch is dark lines on white as a pencil drawing is.
 */
import { checkBatch, type ImageBatch } from './tensor.js';
import * as is from './validate.js';

export interface SketchOptions {
  /**
   * An edge is a pixel whose Sobel magnitude is at least this fraction of the image's largest
   * (default 0.25). 0 keeps the magnitude itself: a soft sketch, no threshold.
   */
  threshold?: number;
  /** Dark lines on white (default true); false: white lines on black. */
  invert?: boolean;
}

/** Sobel gradient magnitude of the grey level of image i: [h * w]. Edge pixels are replicated. */
export function sobelMagnitude(image: ImageBatch, i: number): Float32Array {
  const [, c, h, w] = image.shape;
  const plane = h * w;
  const grey = new Float32Array(plane);
  for (let ch = 0; ch < c; ch++) {
    const base = (i * c + ch) * plane;
    for (let p = 0; p < plane; p++) grey[p]! += image.data[base + p]! / c;
  }
  const at = (y: number, x: number) => grey[Math.min(h - 1, Math.max(0, y)) * w + Math.min(w - 1, Math.max(0, x))]!;
  const out = new Float32Array(plane);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const gx = at(y - 1, x + 1) + 2 * at(y, x + 1) + at(y + 1, x + 1) - at(y - 1, x - 1) - 2 * at(y, x - 1) - at(y + 1, x - 1);
      const gy = at(y + 1, x - 1) + 2 * at(y + 1, x) + at(y + 1, x + 1) - at(y - 1, x - 1) - 2 * at(y - 1, x) - at(y - 1, x + 1);
      out[y * w + x] = Math.hypot(gx, gy);
    }
  }
  return out;
}

/**
 * A sketch of each image, with the images' channel count (the grey sketch repeated).
 *
 * @example
 * const sketches = sketchFromImage(photos);                      // dark lines on white
 * const soft = sketchFromImage(photos, { threshold: 0 });        // unthresholded
 */
export function sketchFromImage(image: ImageBatch, options: SketchOptions = {}): ImageBatch {
  const x = checkBatch('image', image);
  if (!is.isObject(options)) throw is.invalid('options', 'object', options);
  is.knownKeys('sketch options', options, ['threshold', 'invert']);
  const threshold = is.finiteNumber('threshold', options.threshold ?? 0.25, { min: 0, max: 1 });
  const invert = is.boolean('invert', options.invert ?? true);
  const [n, c, h, w] = x.shape;
  const plane = h * w;
  const out = new Float32Array(x.data.length);
  for (let i = 0; i < n; i++) {
    const mag = sobelMagnitude(x, i);
    let max = 0;
    for (const v of mag) max = Math.max(max, v);
    for (let p = 0; p < plane; p++) {
      const r = max > 0 ? mag[p]! / max : 0;
      const edge = threshold === 0 ? r : r >= threshold && max > 0 ? 1 : 0;
      const v = invert ? 1 - edge : edge;
      for (let ch = 0; ch < c; ch++) out[(i * c + ch) * plane + p] = v;
    }
  }
  return { data: out, shape: [n, c, h, w] };
}
