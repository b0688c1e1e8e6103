/** Image and distribution metrics for `robust-synth eval`. Plain TypeScript, no native code. */
import type { ImageBatch } from '../tensor.js';

/** PSNR in dB of sample i of `a` against sample i of `b` (pixels in [0, 1]), over `region` (1 = counted) or all pixels. */
export function psnr(a: ImageBatch, b: ImageBatch, i: number, region?: Float32Array): number {
  const [, c, h, w] = a.shape;
  const plane = h * w;
  let se = 0;
  let n = 0;
  for (let ch = 0; ch < c; ch++) {
    const base = (i * c + ch) * plane;
    for (let p = 0; p < plane; p++) {
      if (region && !(region[p]! > 0.5)) continue;
      se += (a.data[base + p]! - b.data[base + p]!) ** 2;
      n++;
    }
  }
  if (n === 0) return NaN;
  const mse = se / n;
  return mse === 0 ? Infinity : 10 * Math.log10(1 / mse);
}

function gaussianWindow(size = 11, sigma = 1.5): Float64Array {
  const r = (size - 1) / 2;
  const g = Float64Array.from({ length: size }, (_, k) => Math.exp(-((k - r) ** 2) / (2 * sigma * sigma)));
  const s = g.reduce((x, y) => x + y, 0);
  return g.map((v) => v / s);
}

/** Separable Gaussian blur with edge clamping (so small images keep every pixel). */
function blur(src: Float64Array, h: number, w: number, g: Float64Array): Float64Array {
  const r = (g.length - 1) / 2;
  const tmp = new Float64Array(h * w);
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = -r; k <= r; k++) s += g[k + r]! * src[y * w + Math.min(w - 1, Math.max(0, x + k))]!;
      tmp[y * w + x] = s;
    }
  }
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let s = 0;
      for (let k = -r; k <= r; k++) s += g[k + r]! * tmp[Math.min(h - 1, Math.max(0, y + k)) * w + x]!;
      out[y * w + x] = s;
    }
  }
  return out;
}

/**
 * SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03, range 1) of sample i,
 * averaged over channels and over `region` (or every pixel).
 */
export function ssim(a: ImageBatch, b: ImageBatch, i: number, region?: Float32Array): number {
  const [, c, h, w] = a.shape;
  const plane = h * w;
  const g = gaussianWindow();
  const C1 = 0.01 ** 2;
  const C2 = 0.03 ** 2;
  let total = 0;
  let n = 0;
  for (let ch = 0; ch < c; ch++) {
    const base = (i * c + ch) * plane;
    const x = Float64Array.from(a.data.subarray(base, base + plane));
    const y = Float64Array.from(b.data.subarray(base, base + plane));
    const mx = blur(x, h, w, g);
    const my = blur(y, h, w, g);
    const xx = blur(x.map((v) => v * v), h, w, g);
    const yy = blur(y.map((v) => v * v), h, w, g);
    const xy = blur(x.map((v, k) => v * y[k]!), h, w, g);
    for (let p = 0; p < plane; p++) {
      if (region && !(region[p]! > 0.5)) continue;
      const vx = xx[p]! - mx[p]! ** 2;
      const vy = yy[p]! - my[p]! ** 2;
      const cxy = xy[p]! - mx[p]! * my[p]!;
      total += ((2 * mx[p]! * my[p]! + C1) * (2 * cxy + C2)) / ((mx[p]! ** 2 + my[p]! ** 2 + C1) * (vx + vy + C2));
      n++;
    }
  }
  return n ? total / n : NaN;
}

/** Share of predictions equal to their targets. */
export function agreement(predictions: ArrayLike<number>, targets: ArrayLike<number>): number {
  let hit = 0;
  for (let i = 0; i < predictions.length; i++) if (predictions[i] === targets[i]) hit++;
  return predictions.length ? hit / predictions.length : NaN;
}

/** Row-wise softmax probability of column `cols[i]` in logits [n, k]. */
export function softmaxAt(logits: Float32Array, k: number, cols: ArrayLike<number>): Float64Array {
  const n = logits.length / k;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let j = 0; j < k; j++) m = Math.max(m, logits[i * k + j]!);
    let s = 0;
    for (let j = 0; j < k; j++) s += Math.exp(logits[i * k + j]! - m);
    out[i] = Math.exp(logits[i * k + cols[i]!]! - m) / s;
  }
  return out;
}

/** Mean pairwise L2 distance between the samples of a batch (0 for fewer than two). */
export function diversity(b: ImageBatch): number {
  const n = b.shape[0];
  const s = b.data.length / n;
  let total = 0;
  let pairs = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let d = 0;
      for (let k = 0; k < s; k++) d += (b.data[i * s + k]! - b.data[j * s + k]!) ** 2;
      total += Math.sqrt(d);
      pairs++;
    }
  }
  return pairs ? total / pairs : 0;
}

/** Eigen-decomposition of a symmetric d x d matrix (cyclic Jacobi). Returns eigenvalues and column eigenvectors. */
export function symmetricEigen(m: Float64Array, d: number): { values: Float64Array; vectors: Float64Array } {
  const a = Float64Array.from(m);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += a[p * d + q]! ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < d; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = a[p * d + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * d + q]! - a[p * d + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          const akp = a[k * d + p]!;
          const akq = a[k * d + q]!;
          a[k * d + p] = c * akp - s * akq;
          a[k * d + q] = s * akp + c * akq;
        }
        for (let k = 0; k < d; k++) {
          const apk = a[p * d + k]!;
          const aqk = a[q * d + k]!;
          a[p * d + k] = c * apk - s * aqk;
          a[q * d + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p]!;
          const vkq = v[k * d + q]!;
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  return { values: Float64Array.from({ length: d }, (_, i) => a[i * d + i]!), vectors: v };
}

function meanCov(x: Float32Array, n: number, d: number): { mu: Float64Array; cov: Float64Array } {
  const mu = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) mu[k] += x[i * d + k]! / n;
  const cov = new Float64Array(d * d);
  const c = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < d; k++) c[k] = x[i * d + k]! - mu[k]!;
    for (let p = 0; p < d; p++) {
      if (c[p] === 0) continue;
      for (let q = p; q < d; q++) cov[p * d + q] += c[p]! * c[q]!;
    }
  }
  const denom = Math.max(1, n - 1);
  for (let p = 0; p < d; p++) {
    for (let q = p; q < d; q++) {
      cov[p * d + q]! /= denom;
      cov[q * d + p] = cov[p * d + q]!;
    }
  }
  return { mu, cov };
}

function matmul(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let k = 0; k < d; k++) {
    const aik = a[i * d + k]!;
    if (aik === 0) continue;
    for (let j = 0; j < d; j++) out[i * d + j] += aik * b[k * d + j]!;
  }
  return out;
}

/**
 * Fréchet distance between two sets of feature vectors (rows of [n, d]):
 * ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), computed with symmetric eigen-decompositions.
 */
export function frechetDistance(a: Float32Array, na: number, b: Float32Array, nb: number, d: number): number {
  const A = meanCov(a, na, d);
  const B = meanCov(b, nb, d);
  let meanTerm = 0;
  for (let k = 0; k < d; k++) meanTerm += (A.mu[k]! - B.mu[k]!) ** 2;
  const ea = symmetricEigen(A.cov, d);
  // S1^1/2 = V diag(sqrt(max(l, 0))) V^T
  const sqrtA = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += ea.vectors[i * d + k]! * Math.sqrt(Math.max(0, ea.values[k]!)) * ea.vectors[j * d + k]!;
    sqrtA[i * d + j] = s;
  }
  const inner = matmul(matmul(sqrtA, B.cov, d), sqrtA, d);
  for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) {
    const s = (inner[i * d + j]! + inner[j * d + i]!) / 2;
    inner[i * d + j] = s;
    inner[j * d + i] = s;
  }
  const ei = symmetricEigen(inner, d);
  let trSqrt = 0;
  for (const l of ei.values) trSqrt += Math.sqrt(Math.max(0, l));
  let tr = 0;
  for (let k = 0; k < d; k++) tr += A.cov[k * d + k]! + B.cov[k * d + k]!;
  return Math.max(0, meanTerm + tr - 2 * trSqrt);
}

/** Hole filling by diffusion: hole pixels repeatedly take the mean of their 4 neighbours (a discrete Laplace fill). */
export function diffusionFill(image: ImageBatch, mask: Float32Array, iterations = 500): ImageBatch {
  const [n, c, h, w] = image.shape;
  const plane = h * w;
  const out = new Float32Array(image.data);
  const hole: number[] = [];
  for (let p = 0; p < plane; p++) if (mask[p]! > 0.5) hole.push(p);
  for (let i = 0; i < n * c; i++) {
    const base = i * plane;
    let known = 0;
    let cnt = 0;
    for (let p = 0; p < plane; p++) if (!(mask[p]! > 0.5)) (known += out[base + p]!), cnt++;
    for (const p of hole) out[base + p] = cnt ? known / cnt : 0.5;
    for (let it = 0; it < iterations; it++) {
      for (const p of hole) {
        const y = Math.floor(p / w);
        const x = p % w;
        let s = 0;
        let k = 0;
        if (y > 0) (s += out[base + p - w]!), k++;
        if (y < h - 1) (s += out[base + p + w]!), k++;
        if (x > 0) (s += out[base + p - 1]!), k++;
        if (x < w - 1) (s += out[base + p + 1]!), k++;
        out[base + p] = s / k;
      }
    }
  }
  return { data: out, shape: image.shape };
}

/** Per column, the largest value over the rows of a [n, d] representation: the scale a unit's value is read against. */
export function columnMax(rep: { data: Float32Array; shape: [number, number] }): Float32Array {
  const [n, d] = rep.shape;
  const out = new Float32Array(d).fill(-Infinity);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) out[j] = Math.max(out[j]!, rep.data[i * d + j]!);
  return out;
}

/**
 * Mean absolute difference between horizontally and vertically neighbouring pixels, over a
 * batch: low for smooth shapes, high for pixel-level noise (what a standard classifier's
 * gradients paint).
 */
export function roughness(b: ImageBatch): number {
  const [n, c, h, w] = b.shape;
  let s = 0;
  for (let p = 0; p < n * c; p++) {
    const base = p * h * w;
    for (let y = 0; y < h; y++) for (let x = 0; x + 1 < w; x++) s += Math.abs(b.data[base + y * w + x + 1]! - b.data[base + y * w + x]!);
    for (let y = 0; y + 1 < h; y++) for (let x = 0; x < w; x++) s += Math.abs(b.data[base + (y + 1) * w + x]! - b.data[base + y * w + x]!);
  }
  const pairs = n * c * (2 * h * w - h - w);
  return pairs ? s / pairs : NaN;
}

/** The median of a list (NaN when empty). */
export function median(a: ArrayLike<number>): number {
  const s = Array.from(a).sort((x, y) => x - y);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
