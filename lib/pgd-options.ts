/**
 * The options of a PGD run (`pgd()`, `session()`), their checks, and the conversion of the
 * engine's result. The checks run on the JS thread before anything native starts, against the
 * classifier the run is for (its input shape, classes and representation size).
 */
import type { RawPgdOptions, RawPgdResult } from '../binding/index.js';
import { RobustSynthError } from './errors.js';
import type { ModelCard } from './models.js';
import { checkBatch, floatView, int32View, type ImageBatch, type Shape4, type Tensor2D } from './tensor.js';
import * as is from './validate.js';

export type Constraint = '2' | 'inf' | 'unconstrained';
/** A class: its index, or its name as listed in the model card. */
export type ClassRef = number | string;

export interface Progress {
  step: number;
  total: number;
  /** Mean loss over the batch at this step. */
  loss: number;
  elapsedMs: number;
}

export interface PgdOptions {
  /** Starting images, NCHW in [0, 1]. */
  x0: ImageBatch;
  /** One class per sample. */
  targets: ArrayLike<ClassRef>;
  constraint?: Constraint;
  eps: number;
  step: number;
  iterations: number;
  /** Keep each sample's lowest-loss iterate (the reference default). Default true. */
  useBest?: boolean;
  /** Start from a random point of the eps ball. Default false. */
  randomStart?: boolean;
  /** Seed of the random start. Default 0. */
  seed?: number;
  /** true (default): minimize cross-entropy toward `targets`. false: maximize it (an untargeted attack on true labels). */
  targeted?: boolean;
  /** Adds weight * mean(((reference - x) * (1 - mask))^2) per sample. mask is 1 where pixels may change freely. */
  penalty?: { weight: number; mask: ImageBatch; reference?: ImageBatch };
  /** Instead of cross-entropy, maximize weight * features(x)[:, index]. */
  feature?: { index: number; weight?: number };
  /**
   * Instead of cross-entropy, minimize ||features(x) - features(target)||_2 per sample (representation
   * inversion). `target`: the representations to reach, [n or 1, d] (one row for every sample), or
   * images at the model's input shape, [n or 1, c, h, w], whose features() are computed first.
   */
  inversion?: { target: Tensor2D | ImageBatch };
  /** Autocast the forward/backward to bfloat16 (images and updates stay fp32). Default false. */
  bf16?: boolean;
  onProgress?: (p: Progress) => void;
  /** Call onProgress every k steps (default 1). */
  progressEvery?: number;
  signal?: AbortSignal;
}

export type SessionOptions = Omit<PgdOptions, 'onProgress' | 'progressEvery' | 'signal'>;

export interface PgdResult {
  images: ImageBatch;
  /** Final loss of each returned image. */
  losses: Float32Array;
  /** Class the classifier assigns to each returned image. */
  predictions: Int32Array;
  stats: { ms: number; steps: number; msPerStep: number };
}

const PGD_KEYS = [
  'x0', 'targets', 'constraint', 'eps', 'step', 'iterations', 'useBest', 'randomStart', 'seed', 'targeted',
  'penalty', 'feature', 'inversion', 'bf16', 'onProgress', 'progressEvery', 'signal',
] as const;

/** What the addon takes on top of RawPgdOptions for an inversion. */
export type RawOptions = RawPgdOptions & { inversion?: boolean; targetRep?: { data: Float32Array; shape: number[] } };

/** What the checks need to know of the classifier a run is for. */
export interface OptionsTarget {
  readonly name: string;
  readonly inputShape: [number, number, number];
  readonly card?: ModelCard;
  classIndex(ref: ClassRef, name?: string): number;
  features(images: ImageBatch): Promise<Tensor2D>;
}

/** A batch at the classifier's input shape. */
export function modelBatch(clf: OptionsTarget, name: string, v: unknown): ImageBatch {
  const [c, h, w] = clf.inputShape;
  return checkBatch(name, v, { c, h, w });
}

/**
 * Checks a run's options and fills in the defaults. `targetRep` is the inversion target as
 * resolveInversion() gave it (which must run first when there is one).
 */
export function rawOptions(clf: OptionsTarget, o: unknown, targetRep?: Tensor2D): RawOptions {
  if (!is.isObject(o)) throw is.invalid('options', 'object', o);
  is.knownKeys('pgd options', o, PGD_KEYS);
  const x0 = modelBatch(clf, 'x0', o.x0);
  const n = x0.shape[0];
  const targetsIn = o.targets;
  if (targetsIn === null || typeof targetsIn !== 'object' || typeof (targetsIn as ArrayLike<unknown>).length !== 'number') {
    throw is.invalid('targets', 'array of class indices or names', targetsIn);
  }
  const list = Array.from(targetsIn as ArrayLike<ClassRef>);
  if (list.length !== n) throw is.invalid('targets', `one class per sample (${n})`, targetsIn);
  const targets = Int32Array.from(list, (t, i) => clf.classIndex(t, `targets[${i}]`));
  const constraint = is.oneOf('constraint', o.constraint ?? '2', ['2', 'inf', 'unconstrained'] as const);
  const eps = is.finiteNumber('eps', o.eps, { min: 0 });
  const step = is.finiteNumber('step', o.step, { min: 0 });
  const iterations = is.integer('iterations', o.iterations, { min: 0, max: 1e7 });
  const raw: RawOptions = {
    x0,
    targets,
    constraint,
    eps,
    step,
    iterations,
    useBest: is.boolean('useBest', o.useBest ?? true),
    randomStart: is.boolean('randomStart', o.randomStart ?? false),
    seed: is.integer('seed', o.seed ?? 0, { min: 0, max: Number.MAX_SAFE_INTEGER }),
    targeted: is.boolean('targeted', o.targeted ?? true),
    bf16: is.boolean('bf16', o.bf16 ?? false),
    penaltyWeight: 0,
    progressEvery: is.integer('progressEvery', o.progressEvery ?? 1, { min: 1, max: Number.MAX_SAFE_INTEGER }),
  };
  if (o.penalty !== undefined) {
    if (!is.isObject(o.penalty)) throw is.invalid('penalty', '{ weight, mask, reference? }', o.penalty);
    is.knownKeys('penalty', o.penalty, ['weight', 'mask', 'reference']);
    raw.penaltyWeight = is.finiteNumber('penalty.weight', o.penalty.weight, { min: 0 });
    raw.mask = expandMask(o.penalty.mask, x0.shape);
    raw.reference = o.penalty.reference === undefined ? x0 : modelBatch(clf, 'penalty.reference', o.penalty.reference);
    if (raw.reference.shape[0] !== n) throw is.invalid('penalty.reference', `a batch of ${n}`, o.penalty.reference);
  }
  if (o.feature !== undefined) {
    if (!is.isObject(o.feature)) throw is.invalid('feature', '{ index, weight? }', o.feature);
    raw.featureIndex = is.integer('feature.index', o.feature.index, { min: 0, max: Number.MAX_SAFE_INTEGER });
    raw.featureWeight = is.finiteNumber('feature.weight', o.feature.weight ?? 1);
  }
  if (o.inversion !== undefined) {
    if (o.feature !== undefined) throw new RobustSynthError('ERR_BAD_INPUT', 'give either feature or inversion, not both');
    if (!targetRep) throw new RobustSynthError('ERR_BAD_INPUT', 'inversion.target was not resolved'); // resolveInversion runs first
    raw.inversion = true;
    raw.targetRep = targetRep;
  }
  // The engine holds x0's copy and about six working tensors of its size (iterate, gradient,
  // update, best iterate, result), three more with a penalty (mask, reference, kept pixels).
  is.checkMemory(`a PGD batch of shape [${x0.shape.join(', ')}]`, x0.data.byteLength * (raw.mask ? 10 : 7) + 2 * (targetRep?.data.byteLength ?? 0));
  return raw;
}

/**
 * The `inversion` option's target as one representation per sample of x0: rows given as a
 * Tensor2D are checked (and a single row repeated), images are passed through features().
 */
export async function resolveInversion(clf: OptionsTarget, o: unknown): Promise<Tensor2D | undefined> {
  if (!is.isObject(o) || o.inversion === undefined) return undefined;
  const inv = o.inversion;
  if (!is.isObject(inv)) throw is.invalid('inversion', '{ target }', inv);
  is.knownKeys('inversion', inv, ['target']);
  const x0 = o.x0;
  const n = is.isObject(x0) && Array.isArray(x0.shape) && typeof x0.shape[0] === 'number' ? x0.shape[0] : undefined;
  if (n === undefined) return undefined; // rawOptions reports the bad x0
  const t = inv.target;
  if (!is.isObject(t) || !Array.isArray(t.shape) || (t.shape.length !== 2 && t.shape.length !== 4)) {
    throw is.invalid('inversion.target', 'representations { data, shape: [n, d] } or images { data, shape: [n, c, h, w] }', t);
  }
  let rep: Tensor2D;
  if (t.shape.length === 4) {
    rep = await clf.features(modelBatch(clf, 'inversion.target', t));
  } else {
    const [rows, d] = t.shape as unknown[];
    is.integer('inversion.target.shape[0]', rows, { min: 1 });
    is.integer('inversion.target.shape[1]', d, { min: 1 });
    if (!(t.data instanceof Float32Array)) throw is.invalid('inversion.target.data', 'Float32Array', t.data);
    if (t.data.length !== (rows as number) * (d as number)) {
      throw new RobustSynthError('ERR_BAD_INPUT', `inversion.target.data has ${t.data.length} values but shape [${rows}, ${d}] needs ${(rows as number) * (d as number)}`);
    }
    for (let i = 0; i < t.data.length; i++) {
      if (!Number.isFinite(t.data[i]!)) throw new RobustSynthError('ERR_BAD_INPUT', `inversion.target.data[${i}] is ${t.data[i]}; representations must be finite`);
    }
    rep = { data: t.data, shape: [rows as number, d as number] };
  }
  const [rows, d] = rep.shape;
  const size = (clf.card?.representation as { size?: unknown } | undefined)?.size;
  if (typeof size === 'number' && d !== size) {
    throw new RobustSynthError('ERR_BAD_INPUT', `inversion.target has ${d} values per sample, but ${clf.name}'s features() gives ${size}`);
  }
  if (rows === n) return rep;
  if (rows !== 1) throw new RobustSynthError('ERR_BAD_INPUT', `inversion.target has ${rows} rows; expected one per sample of x0 (${n}) or one for all`);
  const data = new Float32Array(n * d);
  for (let i = 0; i < n; i++) data.set(rep.data.subarray(0, d), i * d);
  return { data, shape: [n, d] };
}

/** Masks may be given per batch or per sample, with 1 or c channels; the engine wants x0's shape. */
function expandMask(v: unknown, [n, c, h, w]: Shape4): ImageBatch {
  const m = checkBatch('penalty.mask', v);
  const [mn, mc, mh, mw] = m.shape;
  if ((mn !== 1 && mn !== n) || (mc !== 1 && mc !== c) || mh !== h || mw !== w) {
    throw new RobustSynthError(
      'ERR_BAD_INPUT',
      `penalty.mask has shape [${m.shape.join(', ')}]; expected [${n} or 1, ${c} or 1, ${h}, ${w}]`,
    );
  }
  if (mn === n && mc === c) return m;
  const out = new Float32Array(n * c * h * w);
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) {
      const src = ((mn === 1 ? 0 : i) * mc + (mc === 1 ? 0 : ch)) * plane;
      out.set(m.data.subarray(src, src + plane), (i * c + ch) * plane);
    }
  }
  return { data: out, shape: [n, c, h, w] };
}

/** The engine's result as the API returns it. */
export function toResult(r: RawPgdResult): PgdResult {
  const [n, c, h, w] = r.images.shape as Shape4;
  return {
    images: { data: floatView(r.images.data), shape: [n, c, h, w] },
    losses: floatView(r.losses.data),
    predictions: int32View(r.predictions.data),
    stats: { ms: r.stats.ms, steps: r.stats.steps, msPerStep: r.stats.steps ? r.stats.ms / r.stats.steps : 0 },
  };
}
