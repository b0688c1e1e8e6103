/**
 * Fixed-size device batches: a partial batch is padded with copies of its first row, so that
 * every image is computed at exactly the batch size asked for. An image's result then depends
 * only on its own input and the settings (batch size included), never on which images shared
 * its batch or where in the batch it sat: the engine's per-sample results are the same at any
 * position at a fixed batch size, but not across batch sizes.
 */
import type { PgdOptions, PgdResult } from '../classifier.js';

type Rows = { data: Float32Array; shape: number[] };

/** `t` with `size` rows: its own, then copies of its first. Anything not `rows` rows long is returned as is. */
export function padRows<T extends Rows>(t: T, rows: number, size: number): T {
  if (t.shape[0] !== rows || rows >= size || rows === 0) return t;
  const per = t.data.length / rows;
  const data = new Float32Array(size * per);
  data.set(t.data);
  const first = t.data.subarray(0, per);
  for (let k = rows; k < size; k++) data.set(first, k * per);
  return { ...t, data, shape: [size, ...t.shape.slice(1)] };
}

export function padTargets(targets: Int32Array, size: number): Int32Array {
  if (targets.length >= size || targets.length === 0) return targets;
  const out = new Int32Array(size).fill(targets[0]!);
  out.set(targets);
  return out;
}

/** A task's per-batch options (penalty mask and reference, inversion target) padded as the batch is. */
export function padBatchOptions(o: Pick<PgdOptions, 'feature' | 'inversion' | 'penalty'> | undefined, rows: number, size: number): typeof o {
  if (!o || rows >= size) return o;
  const out = { ...o };
  if (o.penalty) {
    out.penalty = { ...o.penalty, mask: padRows(o.penalty.mask, rows, size), ...(o.penalty.reference ? { reference: padRows(o.penalty.reference, rows, size) } : {}) };
  }
  if (o.inversion) out.inversion = { target: padRows(o.inversion.target as Rows, rows, size) as typeof o.inversion.target };
  return out;
}

/** The first `rows` rows of a padded batch's result. */
export function unpadResult(r: PgdResult, rows: number): PgdResult {
  if (r.images.shape[0] === rows) return r;
  const per = r.images.data.length / r.images.shape[0];
  const images = { data: r.images.data.slice(0, rows * per), shape: [rows, ...r.images.shape.slice(1)] } as PgdResult['images'];
  return { ...r, images, losses: r.losses.slice(0, rows), predictions: r.predictions.slice(0, rows) };
}
