/**
 * The JS-world peer of the native loop: the same classifier (exported from its TorchScript file
 * by bench/export_tfjs_weights.py) and the same PGD loop, in TensorFlow.js on the WebAssembly
 * backend (@tensorflow/tfjs-backend-wasm: XNNPACK kernels with SIMD; in Node.js it runs on one
 * thread, see bench/README.md). Used by bench/tfjs-worker.ts and test/tfjs-peer.test.ts.
 *
 * The loop is the library's (docs/algorithm.md's formulas), targeted L2:
 *   loss = mean over the batch of the per-sample cross-entropy toward the targets;
 *   g = dloss/dx; x = x - step * g / (||g||_2 per sample + 1e-10);
 *   x = x0 + renorm(x - x0, maxnorm eps) per sample (torch.renorm: scale by eps / (norm + 1e-7)
 *   where norm > eps); x = clamp(x, 0, 1);
 *   useBest: each sample's lowest-loss iterate (its loss taken before the update), the final
 *   iterate included.
 * Images are NCHW in [0, 1] on the way in and out (as the library's), NHWC inside.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

export interface TfjsManifest {
  format: 'robust-synth-tfjs/1';
  source: string;
  sourceSha256: string;
  architecture?: string;
  inputShape: [number, number, number];
  numClasses: number;
  weights: string;
  tensors: { name: string; shape: number[]; offset: number; length: number }[];
  ops: TfjsOp[];
  output: string;
  opCounts: Record<string, number>;
  check: { x: number[]; batch: number; logits: number[]; exportDiff: number };
}

type Operand = { act: string } | { const: string } | { scalar: number };

type TfjsOp = { out: string } & (
  | { op: 'conv2d'; x: string; w: string; b: string | null; stride: [number, number]; pad: [number, number]; dilation: [number, number] }
  | { op: 'batchnorm'; x: string; mean: string; variance: string; scale: string | null; offset: string | null; eps: number }
  | { op: 'relu' | 'sigmoid' | 'tanh' | 'meanHW' | 'flatten'; x: string }
  | { op: 'leakyRelu'; x: string; alpha: number }
  | { op: 'add' | 'sub' | 'mul' | 'div'; a: Operand; b: Operand }
  | { op: 'maxPool' | 'avgPool'; x: string; kernel: [number, number]; stride: [number, number]; pad: [number, number] }
  | { op: 'linear'; x: string; w: string; b: string | null }
);

const PYTHON = process.env.RS_PYTHON ?? '/usr/bin/python3';
const EXPORTER = join(dirname(new URL(import.meta.url).pathname), 'export_tfjs_weights.py');

let backendReady: Promise<void> | undefined;

/** Selects the WebAssembly backend (once per process). */
export function initTfjs(backend: 'wasm' | 'cpu' = 'wasm'): Promise<void> {
  backendReady ??= (async () => {
    if (!(await tf.setBackend(backend))) throw new Error(`TF.js backend '${backend}' failed to initialize`);
    await tf.ready();
  })();
  return backendReady;
}

export function tfjsInfo(): { backend: string; simd: boolean; threads: number; version: string } {
  const wasm = tf.getBackend() === 'wasm';
  return {
    backend: tf.getBackend(),
    simd: wasm && tf.env().getBool('WASM_HAS_SIMD_SUPPORT'),
    threads: wasm && tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') ? -1 : 1,
    version: tf.version_core,
  };
}

/**
 * Runs bench/export_tfjs_weights.py for `model` into `out` (a .json; the weights go next to it as
 * .bin), unless `out` was made from the same bytes (the model may be retrained between runs).
 */
export async function exportWeights(model: string, inputShape: [number, number, number], out: string): Promise<TfjsManifest> {
  if (existsSync(out)) {
    try {
      const m = JSON.parse(readFileSync(out, 'utf8')) as TfjsManifest;
      const sha = createHash('sha256').update(readFileSync(model)).digest('hex');
      if (m.format === 'robust-synth-tfjs/1' && m.sourceSha256 === sha && m.inputShape.join() === inputShape.join() && existsSync(join(dirname(out), m.weights))) return m;
    } catch {
      // re-export
    }
  }
  await new Promise<void>((res, rej) => {
    execFile(PYTHON, [EXPORTER, '--model', model, '--shape', inputShape.join(','), '--out', out], { timeout: 300_000 }, (err, _stdout, stderr) => {
      if (err) rej(new Error(`exporting ${model} for TF.js failed: ${stderr.trim().split('\n').slice(-3).join(' ') || err.message}`));
      else res();
    });
  });
  return JSON.parse(readFileSync(out, 'utf8')) as TfjsManifest;
}

/**
 * How the input gradient of a convolution is computed:
 * - 'stock': TF.js's own gradient (the backend's Conv2DBackpropInput kernel; on wasm a plain loop
 *   that takes ~85 % of a step);
 * - 'forward-conv': as a forward convolution of the (stride-dilated) output gradient with the
 *   flipped, transposed kernel, which the wasm backend runs through XNNPACK: what a TF.js user
 *   tuning for speed could write (tf.customGrad). Same values up to float rounding.
 */
export type ConvGrad = 'stock' | 'forward-conv';

export interface PeerPgdOptions {
  /** NCHW in [0, 1]. */
  x0: Float32Array;
  batch: number;
  targets: ArrayLike<number>;
  eps: number;
  step: number;
  iterations: number;
  useBest?: boolean;
  /** Called after the last update, before the final useBest forward (the timing mark). */
  onStepsDone?: () => void;
}

export interface PeerPgdResult {
  /** NCHW. */
  images: Float32Array;
  losses: Float32Array;
  predictions: Int32Array;
}

/** A classifier from an exported manifest, evaluated with TF.js ops in NHWC. */
export class TfjsClassifier {
  readonly manifest: TfjsManifest;
  readonly inputShape: [number, number, number];
  readonly numClasses: number;
  convGrad: ConvGrad = 'stock';
  #weights = new Map<string, tf.Tensor>();
  /** Per conv op: the kernel flipped in H and W with in/out channels swapped (for 'forward-conv'). */
  #flipped = new Map<string, tf.Tensor4D>();

  private constructor(manifest: TfjsManifest, blob: Float32Array) {
    this.manifest = manifest;
    this.inputShape = manifest.inputShape;
    this.numClasses = manifest.numClasses;
    for (const t of manifest.tensors) {
      this.#weights.set(t.name, tf.keep(tf.tensor(blob.subarray(t.offset, t.offset + t.length), t.shape, 'float32')));
    }
  }

  /** Loads `manifestPath` (and its .bin) and checks the forward against the exporter's logits. */
  static async load(manifestPath: string, options: { checkTolerance?: number } = {}): Promise<TfjsClassifier> {
    await initTfjs();
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as TfjsManifest;
    if (manifest.format !== 'robust-synth-tfjs/1') throw new Error(`${manifestPath}: not a robust-synth-tfjs/1 file`);
    const buf = readFileSync(join(dirname(manifestPath), manifest.weights));
    const blob = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    const clf = new TfjsClassifier(manifest, blob);
    const tol = options.checkTolerance ?? 1e-4;
    const got = clf.logits(Float32Array.from(manifest.check.x), manifest.check.batch);
    let d = 0;
    got.forEach((v, i) => { d = Math.max(d, Math.abs(v - manifest.check.logits[i]!)); });
    if (!(d <= tol)) throw new Error(`${manifestPath}: the TF.js forward is ${d.toExponential(2)} away from the module's logits (tolerance ${tol})`);
    return clf;
  }

  #w(name: string | null): tf.Tensor | undefined {
    if (name === null) return undefined;
    const t = this.#weights.get(name);
    if (!t) throw new Error(`weight ${name} missing from the export`);
    return t;
  }

  /** The module's forward on an NHWC batch: logits [n, classes]. */
  forward(x: tf.Tensor4D): tf.Tensor2D {
    const acts = new Map<string, tf.Tensor>([['x', x]]);
    const get = (id: string) => {
      const t = acts.get(id);
      if (!t) throw new Error(`activation ${id} used before it was computed`);
      return t;
    };
    const operand = (o: Operand): tf.Tensor | number => ('act' in o ? get(o.act) : 'const' in o ? this.#w(o.const)! : o.scalar);
    for (const op of this.manifest.ops) {
      let y: tf.Tensor;
      switch (op.op) {
        case 'conv2d': {
          y = this.#conv(op, get(op.x) as tf.Tensor4D);
          if (op.b !== null) y = tf.add(y, this.#w(op.b)!);
          break;
        }
        case 'batchnorm':
          y = tf.batchNorm(get(op.x) as tf.Tensor4D, this.#w(op.mean)!, this.#w(op.variance)!, this.#w(op.offset), this.#w(op.scale), op.eps);
          break;
        case 'relu': y = tf.relu(get(op.x)); break;
        case 'sigmoid': y = tf.sigmoid(get(op.x)); break;
        case 'tanh': y = tf.tanh(get(op.x)); break;
        case 'leakyRelu': y = tf.leakyRelu(get(op.x), op.alpha); break;
        case 'add': y = tf.add(operand(op.a), operand(op.b)); break;
        case 'sub': y = tf.sub(operand(op.a), operand(op.b)); break;
        case 'mul': y = tf.mul(operand(op.a), operand(op.b)); break;
        case 'div': y = tf.div(operand(op.a), operand(op.b)); break;
        case 'meanHW': y = tf.mean(get(op.x), [1, 2], true); break;
        case 'maxPool':
        case 'avgPool': {
          const [ph, pw] = op.pad;
          const pad = ph === 0 && pw === 0 ? 'valid' : ph === pw ? ph : undefined;
          if (pad === undefined) throw new Error(`${op.op} with padding ${op.pad}: not supported`);
          y = (op.op === 'maxPool' ? tf.maxPool : tf.avgPool)(get(op.x) as tf.Tensor4D, op.kernel, op.stride, pad);
          break;
        }
        case 'flatten': {
          const t = get(op.x);
          // PyTorch flattens NCHW: back to channel-major order first, unless H = W = 1.
          const nchw = t.rank === 4 && (t.shape[1] !== 1 || t.shape[2] !== 1) ? tf.transpose(t, [0, 3, 1, 2]) : t;
          y = tf.reshape(nchw, [t.shape[0]!, -1]);
          break;
        }
        case 'linear':
          y = tf.matMul(get(op.x) as tf.Tensor2D, this.#w(op.w) as tf.Tensor2D);
          if (op.b !== null) y = tf.add(y, this.#w(op.b)!);
          break;
        default:
          throw new Error(`unknown op ${(op as { op: string }).op} in the export`);
      }
      acts.set(op.out, y);
    }
    return get(this.manifest.output) as tf.Tensor2D;
  }

  #conv(op: Extract<TfjsOp, { op: 'conv2d' }>, x: tf.Tensor4D): tf.Tensor4D {
    const [ph, pw] = op.pad;
    const w = this.#w(op.w) as tf.Tensor4D;
    const conv = (xx: tf.Tensor4D) => tf.conv2d(xx, w, op.stride, [[0, 0], [ph, ph], [pw, pw], [0, 0]], 'NHWC', op.dilation);
    const [kh, kw] = w.shape;
    const dilated = op.dilation[0] !== 1 || op.dilation[1] !== 1;
    if (this.convGrad === 'stock' || dilated || ph > kh - 1 || pw > kw - 1) return conv(x);
    let flipped = this.#flipped.get(op.w);
    if (!flipped) {
      flipped = tf.keep(tf.tidy(() => tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2])) as tf.Tensor4D);
      this.#flipped.set(op.w, flipped);
    }
    const f = flipped;
    const [sh, sw] = op.stride;
    const fn = tf.customGrad((...inputs) => {
      const xx = inputs[0] as tf.Tensor;
      const inShape = xx.shape as [number, number, number, number];
      return {
        value: conv(xx as tf.Tensor4D),
        gradFunc: (dy: tf.Tensor) => {
          // Dilate dy by the stride (zeros between its rows and columns), then a stride-1
          // convolution with the flipped kernel, padded so that the output has the input's size.
          let d = dy as tf.Tensor4D;
          const [n, ho, wo, co] = d.shape;
          if (sw > 1) {
            d = tf.reshape(tf.stack([d, ...Array.from({ length: sw - 1 }, () => tf.zerosLike(d))], 3), [n, ho, wo * sw, co]);
            d = tf.slice(d, [0, 0, 0, 0], [n, ho, (wo - 1) * sw + 1, co]);
          }
          if (sh > 1) {
            const w2 = d.shape[2];
            d = tf.reshape(tf.stack([d, ...Array.from({ length: sh - 1 }, () => tf.zerosLike(d))], 2), [n, ho * sh, w2, co]);
            d = tf.slice(d, [0, 0, 0, 0], [n, (ho - 1) * sh + 1, w2, co]);
          }
          const [, hd, wd] = d.shape;
          const pt = kh - 1 - ph;
          const pl = kw - 1 - pw;
          const pb = inShape[1] - hd - pt + kh - 1;
          const pr = inShape[2] - wd - pl + kw - 1;
          return tf.conv2d(d, f, 1, [[0, 0], [pt, pb], [pl, pr], [0, 0]], 'NHWC');
        },
      };
    });
    return fn(x) as tf.Tensor4D;
  }

  /** NCHW Float32Array -> NHWC tensor. */
  toNhwc(data: Float32Array, batch: number): tf.Tensor4D {
    const [c, h, w] = this.inputShape;
    if (data.length !== batch * c * h * w) throw new Error(`expected ${batch}x${c}x${h}x${w} values, got ${data.length}`);
    return c === 1 ? tf.tensor4d(data, [batch, h, w, 1]) : tf.tidy(() => tf.transpose(tf.tensor4d(data, [batch, c, h, w]), [0, 2, 3, 1]));
  }

  /** NHWC tensor -> NCHW Float32Array. */
  toNchw(x: tf.Tensor4D): Float32Array {
    if (this.inputShape[0] === 1) return x.dataSync() as Float32Array;
    return tf.tidy(() => tf.transpose(x, [0, 3, 1, 2])).dataSync() as Float32Array;
  }

  /** Logits [n * classes], row-major, of an NCHW batch. */
  logits(x: Float32Array, batch: number): Float32Array {
    const t = tf.tidy(() => this.forward(this.toNhwc(x, batch)));
    const out = Float32Array.from(t.dataSync());
    t.dispose();
    return out;
  }

  /** Per-sample cross-entropy toward one-hot targets. */
  #losses(x: tf.Tensor4D, onehot: tf.Tensor2D): { losses: tf.Tensor1D; logits: tf.Tensor2D } {
    const logits = this.forward(x);
    const losses = tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1)) as tf.Tensor1D;
    return { losses, logits };
  }

  /** The PGD loop (targeted, L2), synchronous: the WebAssembly backend computes eagerly. */
  pgd(o: PeerPgdOptions): PeerPgdResult {
    const n = o.batch;
    const useBest = o.useBest ?? true;
    const eps = o.eps;
    const onehot = tf.keep(tf.tidy(() => tf.cast(tf.oneHot(tf.tensor1d(Array.from(o.targets), 'int32'), this.numClasses), 'float32')) as tf.Tensor2D);
    const x0 = tf.keep(this.toNhwc(o.x0, n));
    let x: tf.Tensor4D = tf.keep(tf.clone(x0));
    let bestX: tf.Tensor4D | undefined;
    let bestLoss: tf.Tensor1D | undefined;
    const meanLoss = (xx: tf.Tensor) => {
      const { losses } = this.#losses(xx as tf.Tensor4D, onehot);
      captured = tf.keep(losses);
      return tf.mean(losses) as tf.Scalar;
    };
    let captured: tf.Tensor1D | undefined;
    const grad = tf.grad(meanLoss);
    const perSample = (t: tf.Tensor) => tf.sqrt(tf.sum(tf.square(t), [1, 2, 3], true));
    for (let i = 0; i < o.iterations; i++) {
      const next = tf.tidy(() => {
        const g = grad(x) as tf.Tensor4D;
        const losses = captured!;
        if (useBest) {
          if (!bestX) {
            bestX = tf.keep(tf.clone(x));
            bestLoss = tf.keep(tf.clone(losses));
          } else {
            const better = tf.less(losses, bestLoss!);
            const nb = tf.keep(tf.where(tf.reshape(better, [n, 1, 1, 1]), x, bestX));
            const nl = tf.keep(tf.where(better, losses, bestLoss!));
            bestX.dispose();
            bestLoss!.dispose();
            bestX = nb as tf.Tensor4D;
            bestLoss = nl as tf.Tensor1D;
          }
        }
        const stepped = tf.sub(x, tf.mul(o.step, tf.div(g, tf.add(perSample(g), 1e-10))));
        const d = tf.sub(stepped, x0);
        const norm = perSample(d);
        const factor = tf.where(tf.greater(norm, eps), tf.div(eps, tf.add(norm, 1e-7)), tf.onesLike(norm));
        return tf.clipByValue(tf.add(x0, tf.mul(d, factor)), 0, 1) as tf.Tensor4D;
      });
      captured?.dispose();
      captured = undefined;
      x.dispose();
      x = tf.keep(next);
    }
    o.onStepsDone?.();
    const out = tf.tidy(() => {
      const { losses: lastLoss } = this.#losses(x, onehot);
      let images = x;
      let losses = lastLoss;
      if (useBest && bestX) {
        const better = tf.less(lastLoss, bestLoss!);
        images = tf.where(tf.reshape(better, [n, 1, 1, 1]), x, bestX) as tf.Tensor4D;
        losses = tf.where(better, lastLoss, bestLoss!) as tf.Tensor1D;
      }
      const predictions = tf.argMax(this.forward(images), 1);
      return { images: tf.keep(images), losses: tf.keep(losses), predictions: tf.keep(predictions) };
    });
    const result: PeerPgdResult = {
      images: Float32Array.from(this.toNchw(out.images)),
      losses: Float32Array.from(out.losses.dataSync()),
      predictions: Int32Array.from(out.predictions.dataSync()),
    };
    tf.dispose([out.images, out.losses, out.predictions, x, x0, onehot, bestX, bestLoss].filter((t): t is tf.Tensor => t !== undefined));
    return result;
  }

  dispose(): void {
    for (const t of this.#weights.values()) t.dispose();
    for (const t of this.#flipped.values()) t.dispose();
    this.#weights.clear();
    this.#flipped.clear();
  }
}

export { tf };
