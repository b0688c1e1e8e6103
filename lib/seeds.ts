/**
 * Class-conditional seed distributions for generation (docs/algorithm.md):
 * uniform, univariate normal (per pixel), and multivariate normal fitted on block-averaged
 * images and sampled at low resolution, then upsampled by nearest-neighbour replication.
 */
import { readFileSync } from 'node:fs';
import { RobustSynthError } from './errors.js';
import { writeFileAtomic } from './images.js';
import type { LabeledImages } from './datasets.js';
import type { ImageBatch, Shape4 } from './tensor.js';

export type SeedKind = 'uniform' | 'normal' | 'mvn';
export const SEED_KINDS: readonly SeedKind[] = ['uniform', 'normal', 'mvn'];

export interface SeedClass {
  label: number;
  count: number;
  /** Full-resolution per-pixel mean and variance (univariate normal). */
  mean: Float32Array;
  variance: Float32Array;
  /** Low-resolution mean (multivariate normal). */
  lowMean: Float32Array;
  /**
   * 'cholesky': lower-triangular L (d x d) with L L^T = S + 1e-4 I; sample mu + L z.
   * 'data': the centred low-res data D (rows x d); sample mu + D^T z / sqrt(rows) + 0.01 w,
   * which has exactly the same distribution without forming a d x d matrix (for large d).
   */
  factorKind: 'cholesky' | 'data';
  factor: Float32Array;
  rows: number;
}

export interface SeedModel {
  version: 1;
  /** Per-sample shape [c, h, w]. */
  shape: [number, number, number];
  /** Block-averaging factor of the multivariate normal. */
  factor: number;
  classNames: string[];
  source: string;
  classes: SeedClass[];
}

/** Above this many low-res dimensions, keep the data instead of a d x d Cholesky factor. */
const CHOLESKY_MAX_DIM = 2048;
const JITTER = 1e-4;

/** Block average by `f` of one [c, h, w] sample. */
export function blockAverage(src: Float32Array, [c, h, w]: [number, number, number], f: number, out = new Float32Array(c * (h / f) * (w / f))): Float32Array {
  const lh = h / f;
  const lw = w / f;
  out.fill(0);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      const ly = Math.floor(y / f);
      for (let x = 0; x < w; x++) out[(ch * lh + ly) * lw + Math.floor(x / f)] += src[(ch * h + y) * w + x]!;
    }
  }
  const inv = 1 / (f * f);
  for (let i = 0; i < out.length; i++) out[i]! *= inv;
  return out;
}

/** Nearest-neighbour upsampling (block replication) by `f` of one low-res sample. */
export function upsampleNearest(src: Float32Array, [c, h, w]: [number, number, number], f: number, out = new Float32Array(c * h * w)): Float32Array {
  const lh = h / f;
  const lw = w / f;
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) out[(ch * h + y) * w + x] = src[(ch * lh + Math.floor(y / f)) * lw + Math.floor(x / f)]!;
    }
  }
  return out;
}

/** In-place Cholesky of a symmetric positive-definite d x d matrix (row-major); returns L. */
export function cholesky(a: Float64Array, d: number): Float64Array {
  for (let j = 0; j < d; j++) {
    let s = a[j * d + j]!;
    for (let k = 0; k < j; k++) s -= a[j * d + k]! ** 2;
    if (!(s > 0)) throw new RobustSynthError('ERR_INTERNAL', 'covariance is not positive definite');
    const ljj = Math.sqrt(s);
    a[j * d + j] = ljj;
    for (let i = j + 1; i < d; i++) {
      let t = a[i * d + j]!;
      for (let k = 0; k < j; k++) t -= a[i * d + k]! * a[j * d + k]!;
      a[i * d + j] = t / ljj;
    }
    for (let k = j + 1; k < d; k++) a[j * d + k] = 0;
  }
  return a;
}

/**
 * Fits per-class seed statistics.
 * @param factor block-averaging factor for the multivariate normal (4 at 224x224 as the reference).
 * @param maxRows for large dimensions, how many images per class to keep for the low-rank sampler.
 */
export function fitSeeds(
  ds: LabeledImages,
  { factor, maxRows = 1000, source = 'dataset', maxCholeskyDim = CHOLESKY_MAX_DIM }: { factor: number; maxRows?: number; source?: string; maxCholeskyDim?: number },
): SeedModel {
  const [n, c, h, w] = ds.images.shape;
  if (!Number.isInteger(factor) || factor < 1 || h % factor || w % factor) {
    throw new RobustSynthError('ERR_BAD_INPUT', `Expected a factor that divides ${h}x${w} for factor but received ${factor}`);
  }
  const size = c * h * w;
  const lowShape: [number, number, number] = [c, h, w];
  const d = c * (h / factor) * (w / factor);
  const classes: SeedClass[] = [];
  const labels = [...new Set(ds.labels)].sort((a, b) => a - b);
  for (const label of labels) {
    const idx: number[] = [];
    for (let i = 0; i < n; i++) if (ds.labels[i] === label) idx.push(i);
    const mean = new Float64Array(size);
    const sq = new Float64Array(size);
    const low = idx.map((i) => {
      const x = ds.images.data.subarray(i * size, (i + 1) * size);
      for (let p = 0; p < size; p++) {
        mean[p] += x[p]!;
        sq[p] += x[p]! * x[p]!;
      }
      return blockAverage(x, lowShape, factor);
    });
    const m = idx.length;
    const variance = new Float32Array(size);
    for (let p = 0; p < size; p++) {
      mean[p]! /= m;
      variance[p] = Math.max(0, sq[p]! / m - mean[p]! ** 2);
    }
    const lowMean = new Float64Array(d);
    for (const v of low) for (let k = 0; k < d; k++) lowMean[k] += v[k]! / m;
    let factorKind: SeedClass['factorKind'];
    let factorData: Float32Array;
    let rows: number;
    if (d <= maxCholeskyDim) {
      const cov = new Float64Array(d * d);
      const centred = new Float64Array(d);
      for (const v of low) {
        for (let k = 0; k < d; k++) centred[k] = v[k]! - lowMean[k]!;
        for (let i = 0; i < d; i++) {
          const ci = centred[i]!;
          if (ci === 0) continue;
          const row = i * d;
          for (let j = 0; j <= i; j++) cov[row + j] += ci * centred[j]!;
        }
      }
      for (let i = 0; i < d; i++) {
        for (let j = 0; j <= i; j++) {
          const v = cov[i * d + j]! / m + (i === j ? JITTER : 0);
          cov[i * d + j] = v;
          cov[j * d + i] = v;
        }
      }
      factorKind = 'cholesky';
      factorData = Float32Array.from(cholesky(cov, d));
      rows = d;
    } else {
      // Evenly spaced subset: the low-rank sampler's covariance is that of the rows kept.
      const keep = Math.min(m, maxRows);
      factorKind = 'data';
      factorData = new Float32Array(keep * d);
      for (let r = 0; r < keep; r++) {
        const v = low[Math.floor((r * m) / keep)]!;
        for (let k = 0; k < d; k++) factorData[r * d + k] = v[k]! - lowMean[k]!;
      }
      rows = keep;
    }
    classes.push({
      label,
      count: m,
      mean: Float32Array.from(mean),
      variance,
      lowMean: Float32Array.from(lowMean),
      factorKind,
      factor: factorData,
      rows,
    });
  }
  return { version: 1, shape: [c, h, w], factor, classNames: ds.classes, source, classes };
}

/** A seeded PRNG: uniform in [0, 1) (mulberry32) and standard normal (Box-Muller). */
export function rng(seed: number): { uniform: () => number; normal: () => number } {
  let a = seed >>> 0 || 0x9e3779b9;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let spare: number | undefined;
  const normal = () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    let u = 0;
    while (u === 0) u = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    const th = 2 * Math.PI * uniform();
    spare = r * Math.sin(th);
    return r * Math.cos(th);
  };
  return { uniform, normal };
}

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/** The largest seed index a sampler accepts (seeds 0..MAX_SEED_INDEX-1 of a class): bounds what a job may ask. */
export const MAX_SEED_INDEX = 10_000_000;

/** A 32-bit mix of the three numbers a seed depends on (murmur3's finalizer over each in turn). */
function streamKey(randomSeed: number, label: number, index: number): number {
  let h = 0x811c9dc5;
  for (const v of [randomSeed, label, index]) {
    let k = Math.imul(v >>> 0, 0xcc9e2d51);
    k = Math.imul((k << 15) | (k >>> 17), 0x1b873593);
    h ^= k;
    h = (Math.imul((h << 13) | (h >>> 19), 5) + 0xe6546b64) >>> 0;
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Seeds drawn so far by this process (rows and random numbers): what a job's sampling cost, for tests and benchmarks. */
export const seedCounters = { rows: 0, draws: 0 };

/**
 * Draws seeds `start..start+count-1` of class `label`. Every seed index has its own random
 * stream, so seed i depends only on (label, seed, i): drawing seeds 99,992..99,999 costs what
 * drawing seeds 0..7 does, and gives exactly the rows a draw of 0..99,999 gives there (what a
 * queue job of a seed range relies on). 'uniform' needs no model (pass `shape`).
 * @example const x0 = sampleSeeds(model, 'mvn', 7, 8, 42);
 */
export function sampleSeeds(
  model: SeedModel | undefined,
  kind: SeedKind,
  label: number,
  count: number,
  seed: number,
  shape?: [number, number, number],
  start = 0,
): ImageBatch {
  const [c, h, w] = model?.shape ?? shape ?? [0, 0, 0];
  if (!c) throw new RobustSynthError('ERR_BAD_INPUT', 'uniform seeds need a shape when no seed model is given');
  if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > MAX_SEED_INDEX) {
    throw new RobustSynthError('ERR_BAD_INPUT', `seed indices must lie in 0..${MAX_SEED_INDEX - 1}, got ${start}..${start + count - 1}`);
  }
  const size = c * h * w;
  const data = new Float32Array(count * size);
  const out: ImageBatch = { data, shape: [count, c, h, w] as Shape4 };
  const stream = (s: number) => {
    const r = rng(streamKey(seed, label, start + s));
    seedCounters.rows++;
    return {
      uniform: () => (seedCounters.draws++, r.uniform()),
      normal: () => (seedCounters.draws++, r.normal()),
    };
  };
  if (kind === 'uniform') {
    for (let s = 0; s < count; s++) {
      const r = stream(s);
      for (let p = 0; p < size; p++) data[s * size + p] = r.uniform();
    }
    return out;
  }
  if (!model) throw new RobustSynthError('ERR_BAD_INPUT', `${kind} seeds need a fitted seed model (robust-synth fit-seeds)`);
  const cls = model.classes.find((k) => k.label === label);
  if (!cls) throw new RobustSynthError('ERR_BAD_INPUT', `the seed model has no statistics for class ${label}`);
  if (kind === 'normal') {
    for (let s = 0; s < count; s++) {
      const r = stream(s);
      for (let p = 0; p < size; p++) data[s * size + p] = clamp01(cls.mean[p]! + Math.sqrt(cls.variance[p]!) * r.normal());
    }
    return out;
  }
  const f = model.factor;
  const d = cls.lowMean.length;
  const low = new Float32Array(d);
  for (let s = 0; s < count; s++) {
    const r = stream(s);
    low.set(cls.lowMean);
    if (cls.factorKind === 'cholesky') {
      const z = Float64Array.from({ length: d }, () => r.normal());
      for (let i = 0; i < d; i++) {
        let acc = 0;
        const row = i * d;
        for (let j = 0; j <= i; j++) acc += cls.factor[row + j]! * z[j]!;
        low[i]! += acc;
      }
    } else {
      const inv = 1 / Math.sqrt(cls.rows);
      for (let k = 0; k < cls.rows; k++) {
        const zk = r.normal() * inv;
        const row = k * d;
        for (let i = 0; i < d; i++) low[i]! += cls.factor[row + i]! * zk;
      }
      for (let i = 0; i < d; i++) low[i]! += Math.sqrt(JITTER) * r.normal();
    }
    for (let i = 0; i < d; i++) low[i] = clamp01(low[i]!);
    upsampleNearest(low, [c, h, w], f, data.subarray(s * size, (s + 1) * size));
  }
  return out;
}

const MAGIC = 'RSSEEDS1';

/** Binary seed file: magic, JSON header length (u32 LE), JSON header, then float32 arrays. */
export function saveSeeds(path: string, model: SeedModel): void {
  const arrays: Float32Array[] = [];
  const header = {
    ...model,
    classes: model.classes.map((k) => {
      const ref = (a: Float32Array) => (arrays.push(a), arrays.length - 1);
      return { ...k, mean: ref(k.mean), variance: ref(k.variance), lowMean: ref(k.lowMean), factor: ref(k.factor) };
    }),
    arrays: [] as number[],
  };
  header.arrays = arrays.map((a) => a.length);
  const json = Buffer.from(JSON.stringify(header));
  const head = Buffer.alloc(12);
  head.write(MAGIC, 0, 'ascii');
  head.writeUInt32LE(json.length, 8);
  const pad = Buffer.alloc((4 - ((12 + json.length) % 4)) % 4, 32);
  writeFileAtomic(path, Buffer.concat([head, json, pad, ...arrays.map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength))]));
}

export function loadSeeds(path: string): SeedModel {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new RobustSynthError('ERR_BAD_INPUT', `cannot read seed file ${path}: ${(e as Error).message}`);
  }
  if (buf.length < 12 || buf.toString('ascii', 0, 8) !== MAGIC) {
    throw new RobustSynthError('ERR_BAD_INPUT', `${path} is not a robust-synth seed file`);
  }
  const jsonLen = buf.readUInt32LE(8);
  const header = JSON.parse(buf.toString('utf8', 12, 12 + jsonLen));
  let off = 12 + jsonLen;
  off += (4 - (off % 4)) % 4;
  const arrays = (header.arrays as number[]).map((len) => {
    const a = new Float32Array(len);
    a.set(new Float32Array(buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + off + len * 4)));
    off += len * 4;
    return a;
  });
  if (off !== buf.length) throw new RobustSynthError('ERR_BAD_INPUT', `${path} is truncated or corrupt`);
  delete header.arrays;
  header.classes = header.classes.map((k: Record<string, number>) => ({
    ...k,
    mean: arrays[k.mean!]!,
    variance: arrays[k.variance!]!,
    lowMean: arrays[k.lowMean!]!,
    factor: arrays[k.factor!]!,
  }));
  return header as SeedModel;
}
