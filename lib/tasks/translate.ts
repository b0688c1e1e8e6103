/** Image-to-image translation: PGD from a source image of any class toward a target class. */
import type { ClassRef } from '../classifier.js';
import { checkBatch, type ImageBatch } from '../tensor.js';
import * as is from '../validate.js';
import { checkClassifier, classList, COMMON_KEYS, resolveSettings, runBatched, type CommonTaskOptions, type TaskResult } from './common.js';

export interface TranslateOptions extends CommonTaskOptions {
  image: ImageBatch;
  /** Target class: one for all images, or one per image. */
  to: ClassRef | ClassRef[];
}

/**
 * @example
 * const r = await translate({ classifier: clf, image: shirts, to: 'Dress' });
 */
export async function translate(options: TranslateOptions): Promise<TaskResult> {
  if (!is.isObject(options)) throw is.invalid('options', 'object', options);
  is.knownKeys('translate options', options, [...COMMON_KEYS, 'image', 'to']);
  const clf = checkClassifier(options);
  const [c, h, w] = clf.inputShape;
  const image = checkBatch('image', options.image, { c, h, w });
  const targets = classList(clf, 'to', options.to, image.shape[0]);
  return runBatched('translate', { ...options, classifier: clf }, resolveSettings('translate', options), image, targets);
}
