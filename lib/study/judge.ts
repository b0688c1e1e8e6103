/**
 * Predictions restricted to Imagenette: the study's classifiers have the 1000-class ImageNet
 * head; every prediction, by a synthesizing model or a judge, is the argmax over the 10
 * Imagenette logits only (and a confidence is the softmax over those 10).
 */
import type { Classifier } from '../classifier.js';
import { IMAGENETTE } from '../datasets.js';
import { RobustSynthError } from '../errors.js';
import { slice, type ImageBatch } from '../tensor.js';

export const NETTE_INDICES: readonly number[] = IMAGENETTE.map((c) => c.index);

/** The Imagenette name of an ImageNet index (or the index itself, as text). */
export function netteName(index: number): string {
  return IMAGENETTE.find((c) => c.index === index)?.name ?? String(index);
}

/**
 * Which output column holds each Imagenette class: the ImageNet indices for a 1000-class
 * model; for a 10-class model, its classes matched by name or WordNet id, else Imagenette's order.
 */
export function netteColumns(clf: Pick<Classifier, 'numClasses' | 'classes' | 'name'>): number[] {
  if (clf.numClasses === 1000) return [...NETTE_INDICES];
  if (clf.numClasses === 10) {
    const lower = clf.classes.map((c) => c.toLowerCase());
    const byName = IMAGENETTE.map((c) => lower.findIndex((n) => n === c.name.toLowerCase() || n === c.wnid));
    return byName.every((i) => i >= 0) ? byName : IMAGENETTE.map((_, i) => i);
  }
  throw new RobustSynthError('ERR_BAD_INPUT', `${clf.name} has ${clf.numClasses} outputs; the study needs ImageNet classifiers (1000 classes) or an Imagenette one (10)`);
}

export interface Verdict {
  /** The predicted class, as an ImageNet index (one of the 10). */
  preds: Int32Array;
  /** Softmax over the 10 Imagenette logits, at each image's `targets` class. */
  confidence: Float64Array;
}

/** Predictions over the 10 Imagenette logits, in batches of `batch`. */
export async function verdict(clf: Classifier, x: ImageBatch, targets: ArrayLike<number>, batch = 8, signal?: AbortSignal): Promise<Verdict> {
  const cols = netteColumns(clf);
  const n = x.shape[0];
  const preds = new Int32Array(n);
  const confidence = new Float64Array(n);
  for (let s = 0; s < n; s += batch) {
    const e = Math.min(n, s + batch);
    const l = await clf.logits(slice(x, s, e), { signal });
    const k = l.shape[1];
    for (let i = 0; i < e - s; i++) {
      const z = cols.map((c) => l.data[i * k + c]!);
      let best = 0;
      for (let j = 1; j < z.length; j++) if (z[j]! > z[best]!) best = j;
      preds[s + i] = NETTE_INDICES[best]!;
      const m = z[best]!;
      const sum = z.reduce((a, v) => a + Math.exp(v - m), 0);
      const t = NETTE_INDICES.indexOf(targets[s + i]!);
      confidence[s + i] = t < 0 ? NaN : Math.exp(z[t]! - m) / sum;
    }
  }
  return { preds, confidence };
}
