/** Image batches as they cross the public API: NCHW float32, pixels in [0, 1]. */
import { RobustSynthError } from './errors.js';
import { invalid, isObject } from './validate.js';

export type Shape4 = [n: number, c: number, h: number, w: number];

export interface ImageBatch {
  data: Float32Array;
  shape: Shape4;
}

export interface Tensor2D {
  data: Float32Array;
  shape: [number, number];
}

/** Checks a batch: a Float32Array of the right length, a positive-integer rank-4 shape, finite pixels in [0, 1]. */
export function checkBatch(name: string, v: unknown, expect?: { c?: number; h?: number; w?: number; n?: number }): ImageBatch {
  if (!isObject(v)) throw invalid(name, '{ data: Float32Array, shape: [n, c, h, w] }', v);
  const { data, shape } = v;
  if (!(data instanceof Float32Array)) throw invalid(`${name}.data`, 'Float32Array', data);
  if (!Array.isArray(shape) || shape.length !== 4) throw invalid(`${name}.shape`, 'array [n, c, h, w] of rank 4', shape);
  shape.forEach((d, i) => {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 1) throw invalid(`${name}.shape[${i}]`, 'positive integer', d);
  });
  const [n, c, h, w] = shape as Shape4;
  if (data.length !== n * c * h * w) {
    throw new RobustSynthError('ERR_BAD_INPUT', `${name}.data has ${data.length} values but shape [${shape.join(', ')}] needs ${n * c * h * w}`);
  }
  if (expect) {
    const want = { n, c, h, w, ...expect };
    if (want.n !== n || want.c !== c || want.h !== h || want.w !== w) {
      throw new RobustSynthError(
        'ERR_BAD_INPUT',
        `${name} has shape [${shape.join(', ')}] but the model expects [${want.n}, ${want.c}, ${want.h}, ${want.w}]`,
      );
    }
  }
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (!(x >= 0 && x <= 1)) {
      throw new RobustSynthError('ERR_BAD_INPUT', `${name}.data[${i}] is ${x}; pixels must be finite and in [0, 1]`);
    }
  }
  return { data, shape: [n, c, h, w] };
}

export function sampleSize(b: ImageBatch): number {
  return b.shape[1] * b.shape[2] * b.shape[3];
}

/** Samples i..j of a batch, sharing memory. */
export function slice(b: ImageBatch, start: number, end: number): ImageBatch {
  const s = sampleSize(b);
  return { data: b.data.subarray(start * s, end * s), shape: [end - start, b.shape[1], b.shape[2], b.shape[3]] };
}

/** Concatenates batches of equal sample shape. */
export function concat(batches: ImageBatch[]): ImageBatch {
  if (batches.length === 0) throw new RobustSynthError('ERR_BAD_INPUT', 'concat needs at least one batch');
  const [, c, h, w] = batches[0]!.shape;
  const n = batches.reduce((a, b) => a + b.shape[0], 0);
  const data = new Float32Array(n * c * h * w);
  let off = 0;
  for (const b of batches) {
    data.set(b.data, off);
    off += b.data.length;
  }
  return { data, shape: [n, c, h, w] };
}

/** Float32 view over a Buffer handed over by the addon (no copy). */
export function floatView(buf: Buffer): Float32Array {
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
}

export function int32View(buf: Buffer): Int32Array {
  return new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
}
