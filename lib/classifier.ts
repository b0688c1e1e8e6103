/**
 * The low-level public API: load a TorchScript classifier, read its logits, and run the native
 * PGD engine on it. Every synthesis task (lib/tasks/) is built on exactly this.
 */
import { bindingInfo, loadBinding, type KernelSettings, type RawModel } from '../binding/index.js';
import { RobustSynthError } from './errors.js';
import { modelsDir, readCard, resolveModel, sha256File, type ModelCard } from './models.js';
import { settle } from './native-job.js';
import { modelBatch, rawOptions, resolveInversion, toResult, type ClassRef, type PgdOptions, type PgdResult, type Progress, type SessionOptions } from './pgd-options.js';
import { PgdSession } from './session.js';
import { floatView, type ImageBatch, type Tensor2D } from './tensor.js';
import { assertAllowedModelPath } from './trust.js';
import * as is from './validate.js';

export { PgdSession } from './session.js';
export type { ClassRef, Constraint, PgdOptions, PgdResult, Progress, SessionOptions } from './pgd-options.js';

export type Device = 'cpu' | 'cuda' | 'auto' | `cuda:${number}`;

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

// Defaults chosen by measurement: bench/README.md.
const CHANNELS_LAST_DEFAULT = true;
const FREEZE_DEFAULT = true;

/**
 * Sets the intra-op thread count of the CPU compute thread. The default, `'auto'`, uses the
 * cores this process may use minus those other processes keep busy, re-read before each call
 * and every 250 ms during a long one: on a shared machine, OpenMP threads that compete with
 * another process for a core slow every step 3-40x, while one thread fewer costs at most the
 * parallel speedup (figures: bench/README.md). A number fixes the count: from the next call, or
 * from the next step of one already running.
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

/**
 * The intra-op thread count of the CPU compute thread: a fixed count as soon as setThreads() sets
 * it; under 'auto', the count chosen at the last reading of the load (taken before each call and
 * every 250 ms during one).
 */
export function getThreads(): number {
  return loadBinding().getThreads();
}

/** How the CPU thread count is chosen: 'auto' (adaptive) or 'fixed', the count now (as getThreads()), and its ceiling. */
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
  /**
   * How the module was prepared at load time (LoadOptions after defaults; freeze is false where
   * freezing failed), and the process-wide kernel settings the self-check chose (binding/kernel-check.ts).
   */
  readonly preparation: { channelsLast: boolean; freeze: boolean; kernels?: KernelSettings };
  #raw: RawModel | undefined;
  /** Sessions not yet finished or disposed; weak, so an abandoned one can still be collected. */
  #sessions = new Set<WeakRef<PgdSession>>();

  private constructor(
    raw: RawModel, path: string, inputShape: [number, number, number], classes: string[], card: ModelCard | undefined,
    preparation: Classifier['preparation'],
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
    const preparation = { channelsLast: info.channelsLast, freeze: info.frozen, kernels: bindingInfo()?.kernels };
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

  /** Resolves class names and indices to indices, checking the range. */
  classIndex(ref: ClassRef, name = 'class'): number {
    return is.classIndex(this, ref, name);
  }

  /** Logits [n, classes] of a batch. */
  async logits(images: ImageBatch, options: { signal?: AbortSignal } = {}): Promise<Tensor2D> {
    const callSite = new Error();
    const x = modelBatch(this, 'images', images);
    is.checkMemory(`a batch of shape [${x.shape.join(', ')}]`, 2 * x.data.byteLength);
    const raw = this.#live();
    const t = await settle(() => raw.logits(x), callSite, options.signal);
    return { data: floatView(t.data), shape: [t.shape[0]!, t.shape[1]!] };
  }

  /** The model's representation (its `features()` method, e.g. ResNet50's 2048-d pooled layer). */
  async features(images: ImageBatch): Promise<Tensor2D> {
    const callSite = new Error();
    const x = modelBatch(this, 'images', images);
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
    const raw = rawOptions(this, options, await resolveInversion(this, options));
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
   * Starts a PGD run stepped from JS, one native call per step. The session holds native memory
   * (its iterate, inputs and a reference to this model) until finish() or dispose(): dispose of
   * one you do not finish, in a `finally` or with `await using`.
   *
   * @example
   * await using s = await clf.session({ x0, targets: [1], eps: 4, step: 0.5, iterations: 40 });
   * for (let i = 0; i < 40; i++) await s.step();
   * const r = await s.finish();
   */
  async session(options: SessionOptions): Promise<PgdSession> {
    const callSite = new Error();
    const raw = rawOptions(this, options, await resolveInversion(this, options));
    const model = this.#live();
    const created = await settle(() => model.createSession(raw), callSite);
    for (const r of this.#sessions) if (!r.deref()) this.#sessions.delete(r);
    const ref: { weak?: WeakRef<PgdSession> } = {};
    const session = new PgdSession(created, () => this.#sessions.delete(ref.weak!));
    ref.weak = new WeakRef(session);
    this.#sessions.add(ref.weak);
    if (!this.#raw) {
      // Disposed while the session was being made.
      await session.dispose();
      this.#live();
    }
    return session;
  }

  /** Times `reps` bare forward+backward passes w.r.t. the input (ms each): the floor of one PGD step. */
  async floor(images: ImageBatch, targets: ArrayLike<ClassRef>, reps = 5, bf16 = false): Promise<number[]> {
    const callSite = new Error();
    const x = modelBatch(this, 'images', images);
    const t = Int32Array.from(Array.from(targets), (c, i) => this.classIndex(c, `targets[${i}]`));
    if (t.length !== x.shape[0]) throw is.invalid('targets', `one class per sample (${x.shape[0]})`, targets);
    is.integer('reps', reps, { min: 1 });
    const model = this.#live();
    return settle(() => model.floor(x, t, reps, bf16), callSite);
  }

  /**
   * Releases the model. Its sessions still open are disposed first (their later calls reject
   * with ERR_DISPOSED), so that nothing keeps the weights; jobs still queued reject with
   * ERR_DISPOSED. Safe to call twice.
   */
  async dispose(): Promise<void> {
    const raw = this.#raw;
    this.#raw = undefined;
    const open = [...this.#sessions].map((r) => r.deref()).filter((s): s is PgdSession => s !== undefined);
    this.#sessions.clear();
    await Promise.allSettled(open.map((s) => s.dispose()));
    if (raw) await settle(() => raw.dispose(), new Error());
  }
}
