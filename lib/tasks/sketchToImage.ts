/**
 * Sketch-to-image: PGD from a sketch toward a class, so that the classifier's class features
 * fill the drawing in (the robustness library's settings: cross-entropy toward class k, L2 eps
 * 40, step 1, 60 steps at 224x224). lib/sketch.ts makes sketch-like inputs from photographs.
 */
import type { ClassRef } from '../classifier.js';
import { checkBatch, type ImageBatch } from '../tensor.js';
import * as is from '../validate.js';
import { checkClassifier, classList, COMMON_KEYS, resolveSettings, runBatched, type CommonTaskOptions, type TaskResult } from './common.js';

export interface SketchToImageOptions extends CommonTaskOptions {
  /** Sketches at the model's input shape (dark lines on white, or as sketchFromImage makes them). */
  sketch: ImageBatch;
  /** The class each sketch depicts: one for all, or one per sketch. */
  to: ClassRef | ClassRef[];
}

/**
 * @example
 * const r = await sketchToImage({ classifier: clf, sketch: sketchFromImage(photos), to: 'Sneaker' });
 */
export async function sketchToImage(options: SketchToImageOptions): Promise<TaskResult> {
  if (!is.isObject(options)) throw is.invalid('options', 'object', options);
  is.knownKeys('sketchToImage options', options, [...COMMON_KEYS, 'sketch', 'to']);
  const clf = checkClassifier(options);
  const [c, h, w] = clf.inputShape;
  const sketch = checkBatch('sketch', options.sketch, { c, h, w });
  const targets = classList(clf, 'to', options.to, sketch.shape[0]);
  return runBatched('sketchToImage', { ...options, classifier: clf }, resolveSettings('sketchToImage', options), sketch, targets);
}
