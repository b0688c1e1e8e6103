/**
 * The eval's judges: classifiers that never synthesize, of unrelated families, so that an
 * adversarial image that fools one network family is not counted as a recognisable one. Every
 * judged figure is measured by each judge; the claim is stated on the least favourable one.
 */
import { Classifier, type Device } from '../classifier.js';
import type { ImageBatch } from '../tensor.js';
import { agreement, softmaxAt } from './metrics.js';

/**
 * fashion-judge: a VGG-style convolutional network; fashion-judge-mlp: a multilayer perceptron (no
 * convolutions); fashion-judge-knn: no neural network, k nearest neighbours among real training
 * images in a PCA space of the pixels (models/make_knn_judge.py).
 */
export const JUDGES = ['fashion-judge', 'fashion-judge-mlp', 'fashion-judge-knn'] as const;

/** Short column labels of the judges in the report's tables. */
export const JUDGE_LABELS: Record<string, string> = { 'fashion-judge': 'CNN', 'fashion-judge-mlp': 'MLP', 'fashion-judge-knn': 'kNN' };
export const judgeLabel = (name: string) => JUDGE_LABELS[name] ?? name;

/** One judge's view of a batch: predictions, probability of `targets`, features. */
export interface JudgeView {
  preds: Int32Array;
  confidence: Float64Array;
  features: Float32Array;
  featureSize: number;
}

/** A figure measured by every judge: each judge's value and the least favourable one. */
export interface Judged {
  /** The least favourable value (the smallest, or the largest where `higherIsWorse`). */
  least: number;
  /** Which judge gave it. */
  leastJudge: string;
  byJudge: Record<string, number>;
}

/** One line for logs: "CNN 0.84 / MLP 0.57 / kNN 0.32 (least 0.32)". */
export const judgedLine = (j: Judged, digits = 2) =>
  `${Object.entries(j.byJudge).map(([name, v]) => `${judgeLabel(name)} ${v.toFixed(digits)}`).join(' / ')} (least ${j.least.toFixed(digits)})`;

export async function judgeView(judge: Classifier, x: ImageBatch, targets: ArrayLike<number>): Promise<JudgeView> {
  const logits = await judge.logits(x);
  const k = logits.shape[1];
  const preds = new Int32Array(x.shape[0]);
  for (let i = 0; i < preds.length; i++) {
    let b = 0;
    for (let j = 1; j < k; j++) if (logits.data[i * k + j]! > logits.data[i * k + b]!) b = j;
    preds[i] = b;
  }
  const features = (await judge.features(x)).data;
  return { preds, confidence: softmaxAt(logits.data, k, targets), features, featureSize: x.shape[0] ? features.length / x.shape[0] : 0 };
}

const round4 = (v: number) => (Number.isFinite(v) ? Math.round(v * 1e4) / 1e4 : v);

/** The panel of judges the eval reads every result with. */
export class JudgePanel {
  private constructor(readonly judges: Classifier[]) {}

  /** Loads `names` (default: JUDGES); the ones loaded so far are disposed when one fails. */
  static async load(device: Device, names: readonly string[] = JUDGES): Promise<JudgePanel> {
    const judges: Classifier[] = [];
    try {
      for (const n of names) judges.push(await Classifier.load(n, { device }));
    } catch (e) {
      for (const j of judges) await j.dispose();
      throw e;
    }
    return new JudgePanel(judges);
  }

  get names(): string[] {
    return this.judges.map((j) => j.name);
  }

  /** Every judge's view, in the panel's order. */
  async view(x: ImageBatch, targets: ArrayLike<number>): Promise<JudgeView[]> {
    const out: JudgeView[] = [];
    for (const j of this.judges) out.push(await judgeView(j, x, targets));
    return out;
  }

  /** `f` of each judge's view, and the least favourable of them. */
  judged(views: JudgeView[], f: (v: JudgeView, i: number) => number, higherIsWorse = false): Judged {
    const byJudge: Record<string, number> = {};
    let least = NaN;
    let leastJudge = '';
    views.forEach((v, i) => {
      const value = round4(f(v, i));
      const name = this.judges[i]!.name;
      byJudge[name] = value;
      if (!leastJudge || (higherIsWorse ? value > least : value < least)) (least = value), (leastJudge = name);
    });
    return { least, leastJudge, byJudge };
  }

  /** Agreement of each judge's predictions (rows s..e) with `targets`. */
  agreement(views: JudgeView[], targets: ArrayLike<number>, s = 0, e = targets.length, higherIsWorse = false): Judged {
    const t = Array.prototype.slice.call(targets, s, e) as number[];
    return this.judged(views, (v) => agreement(v.preds.subarray(s, e), t), higherIsWorse);
  }

  async dispose(): Promise<void> {
    for (const j of this.judges) await j.dispose();
  }
}
