/**
 * The low-level public API: load a TorchScript classifier, read its logits, and run the native
 * PGD engine on it. Every synthesis task (lib/tasks/) is built on exactly this.
 */
import { loadBinding, type RawJob, type RawModel, type RawPgdOptions, type RawPgdResult, type RawSession } from '../binding/index.js';
import { fromNative, RobustSynthError } from './errors.js';
import { modelsDir, readCard, resolveModel, sha256File, type ModelCard } from './models.js';
import { checkBatch, floatView, int32View, type ImageBatch, type Shape4, type Tensor2D } from './tensor.js';
import { assertAllowedModelPath } from './trust.js';
import * as is from './validate.js';

export type Device = 'cpu' | 'cuda' | 'auto' | `cuda:${number}`;
export type Constraint = '2' | 'inf' | 'unconstrained';
/** A class: its index, or its name as listed in the model card. */
export type ClassRef = number | string;

export interface LoadOptions {
  /** 'auto' (default) picks CUDA when this LibTorch has it and a GPU is visible, else the CPU. */
  device?: Device;
  /**
   * Per-sample input shape [c, h, w]; read from the model card when there is one. Else the load
   * tries common shapes with the first convolution's channel count (grayscale: 28x28 first;
   * colour: 224x224, then 32x32, ...), keeps the first one the model accepts (`clf.inputShape`
   * tells which) and warns on stderr; a model with global pooling accepts them all.
   */
  inputShape?: [number, number, number];
  /** Class names; read from the model card when there is one. */
  classes?: string[];
  /** Extra directories in which model names are looked up. */
  modelDirs?: string[];
  /** Check the file against the sha256 in its model card (default true when the card has one). */
  verifyChecksum?: boolean;
  /**
   * Load only files inside these directories (symlinks resolved), else ERR_MODEL_NOT_ALLOWED; the
   * embedded models are always allowed. Set it whenever the model name or path is not your own
   * (see docs/security.md: loading a model runs its code).
   */
  allowedDirs?: string[];
  /**
   * Keep 4-d weights and feed inputs in channels-last (NHWC) memory format, which oneDNN's
   * convolutions use without a reorder per call. Default: true on the CPU, false on CUDA (see bench/README.md);
   * a model that fails in channels-last (a head that flattens with `view()`) then loads without it
   * (`preparation.channelsLast` says which). With channelsLast: true, such a model fails to load.
   */
  channelsLast?: boolean;
  /**
   * Freeze the TorchScript module (weights become constants; BatchNorm folds into the preceding
   * convolution). Input gradients still flow; results move at the 1e-7 (relative) level.
   * Default: true; a module that cannot be frozen then runs unfrozen (with freeze: true, the load fails instead).
   */
  freeze?: boolean;
}

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
type RawOptions = RawPgdOptions & { inversion?: boolean; targetRep?: { data: Float32Array; shape: number[] } };

// Defaults chosen by measurement: bench/README.md.
const CHANNELS_LAST_DEFAULT = true;
const FREEZE_DEFAULT = true;

/**
 * Sets the intra-op thread count of the CPU compute thread. The default, `'auto'`, uses the
 * cores this process may use minus those other processes keep busy, re-read before each call
 * and every 250 ms during a long one: on a shared machine, OpenMP threads that compete with
 * another process for a core slow every step 3-40x, while one thread fewer costs at most the
 * parallel speedup (figures: bench/README.md). A number fixes the count.
 *
 * @example
 * setThreads(1);      // a batch job that shares the machine with others of its kind
 * setThreads('auto'); // back to the default
 */
export function setThreads(n: number | 'auto'): void {
  if (n === 'auto') {
    loadBinding().setThreads(0);
    return;
  }
  is.integer('threads', n, { min: 1, max: 1024 });
  loadBinding().setThreads(n);
}

/** The intra-op thread count the CPU compute thread runs with now. */
export function getThreads(): number {
  return loadBinding().getThreads();
}

/** How the CPU thread count is chosen: 'auto' (adaptive) or 'fixed', the count now, and its ceiling. */
export function threadPolicy(): { mode: 'auto' | 'fixed'; current: number; max: number } {
  return loadBinding().threadPolicy();
}

export type JitExecutor = 'profiling' | 'simple' | 'legacy';

/**
 * Chooses LibTorch's TorchScript graph executor for models loaded afterwards (process-wide):
 * 'profiling' (LibTorch's default), 'simple' (no profiling runs, no graph optimization) or 'legacy'.
 */
export function setJitExecutor(mode: JitExecutor): void {
  loadBinding().setJitExecutor(is.oneOf('mode', mode, ['profiling', 'simple', 'legacy'] as const));
}

export function getJitExecutor(): JitExecutor {
  return loadBinding().getJitExecutor();
}

/** What the loaded addon was built against. */
export function buildInfo() {
  return loadBinding().buildInfo();
}

async function settle<T>(job: () => RawJob<T>, callSite: Error, signal?: AbortSignal): Promise<T> {
  if (signal?.aborted) throw new RobustSynthError('ERR_ABORTED', 'the job was aborted before it started');
  let handle: RawJob<T>;
  try {
    handle = job();
  } catch (e) {
    throw fromNative(e, callSite);
  }
  const onAbort = () => handle.cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await handle.promise;
  } catch (e) {
    throw fromNative(e, callSite);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

function toResult(r: RawPgdResult): PgdResult {
  const [n, c, h, w] = r.images.shape as Shape4;
  return {
    images: { data: floatView(r.images.data), shape: [n, c, h, w] },
    losses: floatView(r.losses.data),
    predictions: int32View(r.predictions.data),
    stats: { ms: r.stats.ms, steps: r.stats.steps, msPerStep: r.stats.steps ? r.stats.ms / r.stats.steps : 0 },
  };
}

/** One PGD run whose state stays native between calls: the primitive a JS-driven loop is built on. */
export class PgdSession {
  #raw: RawSession;
  constructor(raw: RawSession) {
    this.#raw = raw;
  }
  /** One forward + backward + update; resolves with each sample's loss before the update. */
  async step(): Promise<Float32Array> {
    const t = await settle(() => this.#raw.step(), new Error());
    return floatView(t.data);
  }
  /**
   * The current iterate (before the useBest pick that finish() makes): a live preview costs one
   * copy, not a second run. Reading it changes nothing in the run.
   */
  async current(): Promise<ImageBatch> {
    const t = await settle(() => this.#raw.current(), new Error());
    return { data: floatView(t.data), shape: t.shape as Shape4 };
  }
  /** The final useBest comparison; resolves with the result. The session cannot step afterwards. */
  async finish(): Promise<PgdResult> {
    return toResult(await settle(() => this.#raw.finish(), new Error()));
  }
}

/**
 * A TorchScript classifier that takes pixels in [0, 1] and returns logits.
 *
 * @example
 * const clf = await Classifier.load('fashion-robust');
 * const r = await clf.pgd({ x0, targets: [3], eps: 4, step: 0.5, iterations: 40 });
 * await clf.dispose();
 */
export class Classifier {
  readonly path: string;
  readonly name: string;
  readonly device: string;
  readonly numClasses: number;
  /** Per-sample input shape [c, h, w]. */
  readonly inputShape: [number, number, number];
  readonly classes: string[];
  readonly card?: ModelCard;
  /** How the module was prepared at load time (LoadOptions after defaults; freeze is false where freezing failed). */
  readonly preparation: { channelsLast: boolean; freeze: boolean };
  #raw: RawModel | undefined;

  private constructor(
    raw: RawModel, path: string, inputShape: [number, number, number], classes: string[], card: ModelCard | undefined,
    preparation: { channelsLast: boolean; freeze: boolean },
  ) {
    const info = raw.info();
    this.#raw = raw;
    this.path = path;
    this.name = card?.name ?? path;
    this.device = info.device;
    this.numClasses = info.numClasses;
    this.inputShape = inputShape;
    this.classes = classes.length === info.numClasses ? classes : Array.from({ length: info.numClasses }, (_, i) => String(i));
    this.card = card;
    this.preparation = preparation;
  }

  /**
   * Loads a model by name (an embedded one such as 'fashion-robust', or a `.pt` in `modelDirs`) or by path.
   *
   * @example
   * const robust = await Classifier.load('fashion-robust', { device: 'cpu' });
   * const resnet = await Classifier.load('./resnet50-l2-eps3.pt', { device: 'auto' });
   */
  static async load(nameOrPath: string, options: LoadOptions = {}): Promise<Classifier> {
    const callSite = new Error();
    is.nonEmptyString('model', nameOrPath);
    const asRecord: unknown = options;
    if (!is.isObject(asRecord)) throw is.invalid('options', 'object', options);
    is.knownKeys('load options', asRecord, ['device', 'inputShape', 'classes', 'modelDirs', 'verifyChecksum', 'channelsLast', 'freeze', 'allowedDirs']);
    const device = options.device ?? 'auto';
    if (typeof device !== 'string' || !/^(cpu|cuda|auto|cuda:\d+)$/.test(device)) {
      throw is.invalid('device', "'cpu', 'cuda', 'cuda:N' or 'auto'", device);
    }
    const resolved = resolveModel(nameOrPath, options.modelDirs ?? []);
    const { card } = resolved;
    const path = options.allowedDirs === undefined ? resolved.path : assertAllowedModelPath(resolved.path, [...options.allowedDirs, modelsDir()]);
    let inputShape = options.inputShape ?? card?.inputShape ?? [3, 224, 224];
    if (!Array.isArray(inputShape) || inputShape.length !== 3) throw is.invalid('inputShape', '[c, h, w]', inputShape);
    inputShape.forEach((d, i) => is.integer(`inputShape[${i}]`, d, { min: 1, max: 16384 }));
    // The load probes one forward on zeros of this shape.
    is.checkMemory(`a model input of shape [${inputShape.join(', ')}]`, 2 * 4 * inputShape[0] * inputShape[1] * inputShape[2]);
    if ((options.verifyChecksum ?? true) && card?.sha256) {
      const actual = await sha256File(path);
      if (actual !== card.sha256) {
        throw new RobustSynthError(
          'ERR_MODEL_LOAD',
          `${path} does not match the sha256 in its model card (${card.sha256.slice(0, 12)}..., file has ${actual.slice(0, 12)}...); ` +
            'the file was changed or corrupted. Re-export it, or pass verifyChecksum: false if you changed it on purpose.',
        );
      }
    }
    const binding = loadBinding();
    const onCpu = device === 'cpu' || (device === 'auto' && !binding.buildInfo().cudaAvailable);
    const config = {
      channelsLast: is.boolean('channelsLast', options.channelsLast ?? (onCpu && CHANNELS_LAST_DEFAULT)),
      freeze: is.boolean('freeze', options.freeze ?? FREEZE_DEFAULT),
      freezeStrict: options.freeze === true,
      inferShape: options.inputShape === undefined && card?.inputShape === undefined,
    };
    let raw: RawModel;
    try {
      raw = await settle(() => binding.load(path, device, inputShape, config), callSite);
    } catch (e) {
      // Channels-last is an optimization the caller did not ask for: a model that reshapes with
      // view() (x.view(n, -1) after convolutions) cannot run on channels-last tensors. Load it as
      // it was written; if that fails too, its error is the one that matters.
      if (!config.channelsLast || options.channelsLast !== undefined || !(e instanceof RobustSynthError)) throw e;
      raw = await settle(() => binding.load(path, device, inputShape, { ...config, channelsLast: false }), callSite);
    }
    const info = raw.info();
    if (config.inferShape && !process.env.ROBUST_SYNTH_QUIET) {
      console.warn(
        `robust-synth: ${path} has no model card; using the input shape it accepts first, [${info.inputShape.join(', ')}] ` +
          '(pass inputShape: [c, h, w], or write a model card, to choose)',
      );
    }
    inputShape = info.inputShape;
    const preparation = { channelsLast: info.channelsLast, freeze: info.frozen };
    return new Classifier(raw, path, inputShape, options.classes ?? card?.classes ?? [], card, preparation);
  }

  /** Reads a model card without loading the model. */
  static card(nameOrPath: string, modelDirs: string[] = []): ModelCard | undefined {
    const { path } = resolveModel(nameOrPath, modelDirs);
    return readCard(path);
  }

  #live(): RawModel {
    if (!this.#raw) throw new RobustSynthError('ERR_DISPOSED', `the classifier ${this.name} was disposed`);
    return this.#raw;
  }

  #batch(name: string, v: unknown): ImageBatch {
    const [c, h, w] = this.inputShape;
    return checkBatch(name, v, { c, h, w });
  }

  /** Resolves class names and indices to indices, checking the range. */
  classIndex(ref: ClassRef, name = 'class'): number {
    if (typeof ref === 'string') {
      const i = this.classes.findIndex((c) => c.toLowerCase() === ref.toLowerCase());
      if (i >= 0) return i;
      if (/^\d+$/.test(ref)) return this.classIndex(Number(ref), name);
      throw new RobustSynthError('ERR_BAD_INPUT', `Unknown class '${ref}' for ${name}; ${this.name} knows: ${this.classes.join(', ')}`);
    }
    return is.integer(name, ref, { min: 0, max: this.numClasses - 1 });
  }

  /** Logits [n, classes] of a batch. */
  async logits(images: ImageBatch, options: { signal?: AbortSignal } = {}): Promise<Tensor2D> {
    const callSite = new Error();
    const x = this.#batch('images', images);
    is.checkMemory(`a batch of shape [${x.shape.join(', ')}]`, 2 * x.data.byteLength);
    const raw = this.#live();
    const t = await settle(() => raw.logits(x), callSite, options.signal);
    return { data: floatView(t.data), shape: [t.shape[0]!, t.shape[1]!] };
  }

  /** The model's representation (its `features()` method, e.g. ResNet50's 2048-d pooled layer). */
  async features(images: ImageBatch): Promise<Tensor2D> {
    const callSite = new Error();
    const x = this.#batch('images', images);
    is.checkMemory(`a batch of shape [${x.shape.join(', ')}]`, 2 * x.data.byteLength);
    const raw = this.#live();
    const t = await settle(() => raw.features(x), callSite);
    return { data: floatView(t.data), shape: [t.shape[0]!, t.shape[1]!] };
  }

  /** Predicted class of each image. */
  async predict(images: ImageBatch): Promise<Int32Array> {
    const l = await this.logits(images);
    const [n, k] = l.shape;
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let j = 1; j < k; j++) if (l.data[i * k + j]! > l.data[i * k + best]!) best = j;
      out[i] = best;
    }
    return out;
  }

  #rawOptions(o: unknown, targetRep?: Tensor2D): RawOptions {
    if (!is.isObject(o)) throw is.invalid('options', 'object', o);
    is.knownKeys('pgd options', o, PGD_KEYS);
    const x0 = this.#batch('x0', o.x0);
    const n = x0.shape[0];
    const targetsIn = o.targets;
    if (targetsIn === null || typeof targetsIn !== 'object' || typeof (targetsIn as ArrayLike<unknown>).length !== 'number') {
      throw is.invalid('targets', 'array of class indices or names', targetsIn);
    }
    const list = Array.from(targetsIn as ArrayLike<ClassRef>);
    if (list.length !== n) throw is.invalid('targets', `one class per sample (${n})`, targetsIn);
    const targets = Int32Array.from(list, (t, i) => this.classIndex(t, `targets[${i}]`));
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
      raw.mask = this.#expandMask(o.penalty.mask, x0.shape);
      raw.reference = o.penalty.reference === undefined ? x0 : this.#batch('penalty.reference', o.penalty.reference);
      if (raw.reference.shape[0] !== n) throw is.invalid('penalty.reference', `a batch of ${n}`, o.penalty.reference);
    }
    if (o.feature !== undefined) {
      if (!is.isObject(o.feature)) throw is.invalid('feature', '{ index, weight? }', o.feature);
      raw.featureIndex = is.integer('feature.index', o.feature.index, { min: 0, max: Number.MAX_SAFE_INTEGER });
      raw.featureWeight = is.finiteNumber('feature.weight', o.feature.weight ?? 1);
    }
    if (o.inversion !== undefined) {
      if (o.feature !== undefined) throw new RobustSynthError('ERR_BAD_INPUT', 'give either feature or inversion, not both');
      if (!targetRep) throw new RobustSynthError('ERR_BAD_INPUT', 'inversion.target was not resolved'); // #resolveInversion runs first
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
  async #resolveInversion(o: unknown): Promise<Tensor2D | undefined> {
    if (!is.isObject(o) || o.inversion === undefined) return undefined;
    const inv = o.inversion;
    if (!is.isObject(inv)) throw is.invalid('inversion', '{ target }', inv);
    is.knownKeys('inversion', inv, ['target']);
    const x0 = o.x0;
    const n = is.isObject(x0) && Array.isArray(x0.shape) && typeof x0.shape[0] === 'number' ? x0.shape[0] : undefined;
    if (n === undefined) return undefined; // #rawOptions reports the bad x0
    const t = inv.target;
    if (!is.isObject(t) || !Array.isArray(t.shape) || (t.shape.length !== 2 && t.shape.length !== 4)) {
      throw is.invalid('inversion.target', 'representations { data, shape: [n, d] } or images { data, shape: [n, c, h, w] }', t);
    }
    let rep: Tensor2D;
    if (t.shape.length === 4) {
      rep = await this.features(this.#batch('inversion.target', t));
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
    const size = (this.card?.representation as { size?: unknown } | undefined)?.size;
    if (typeof size === 'number' && d !== size) {
      throw new RobustSynthError('ERR_BAD_INPUT', `inversion.target has ${d} values per sample, but ${this.name}'s features() gives ${size}`);
    }
    if (rows === n) return rep;
    if (rows !== 1) throw new RobustSynthError('ERR_BAD_INPUT', `inversion.target has ${rows} rows; expected one per sample of x0 (${n}) or one for all`);
    const data = new Float32Array(n * d);
    for (let i = 0; i < n; i++) data.set(rep.data.subarray(0, d), i * d);
    return { data, shape: [n, d] };
  }

  /** Masks may be given per batch or per sample, with 1 or c channels; the engine wants x0's shape. */
  #expandMask(v: unknown, [n, c, h, w]: Shape4): ImageBatch {
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

  /**
   * Runs the whole PGD loop natively (docs/algorithm.md gives the formulas).
   *
   * @example
   * const r = await clf.pgd({
   *   x0, targets: ['Sneaker'], eps: 4, step: 0.5, iterations: 40,
   *   onProgress: (p) => console.log(p.step, p.loss), signal: AbortSignal.timeout(60_000),
   * });
   */
  async pgd(options: PgdOptions): Promise<PgdResult> {
    const callSite = new Error();
    const raw = this.#rawOptions(options, await this.#resolveInversion(options));
    const onProgress = options.onProgress === undefined ? undefined : is.func('onProgress', options.onProgress);
    const model = this.#live();
    const r = await settle(
      () => model.pgd(raw, onProgress as ((p: Progress) => void) | undefined),
      callSite,
      options.signal,
    );
    return toResult(r);
  }

  /**
   * Starts a PGD run stepped from JS, one native call per step.
   *
   * @example
   * const s = await clf.session({ x0, targets: [1], eps: 4, step: 0.5, iterations: 40 });
   * for (let i = 0; i < 40; i++) await s.step();
   * const r = await s.finish();
   */
  async session(options: SessionOptions): Promise<PgdSession> {
    const callSite = new Error();
    const raw = this.#rawOptions(options, await this.#resolveInversion(options));
    const model = this.#live();
    return new PgdSession(await settle(() => model.createSession(raw), callSite));
  }

  /** Times `reps` bare forward+backward passes w.r.t. the input (ms each): the floor of one PGD step. */
  async floor(images: ImageBatch, targets: ArrayLike<ClassRef>, reps = 5, bf16 = false): Promise<number[]> {
    const callSite = new Error();
    const x = this.#batch('images', images);
    const t = Int32Array.from(Array.from(targets), (c, i) => this.classIndex(c, `targets[${i}]`));
    if (t.length !== x.shape[0]) throw is.invalid('targets', `one class per sample (${x.shape[0]})`, targets);
    is.integer('reps', reps, { min: 1 });
    const model = this.#live();
    return settle(() => model.floor(x, t, reps, bf16), callSite);
  }

  /** Releases the model. Jobs still queued reject with ERR_DISPOSED. Safe to call twice. */
  async dispose(): Promise<void> {
    const raw = this.#raw;
    this.#raw = undefined;
    if (raw) await settle(() => raw.dispose(), new Error());
  }
}
