/**
 * Paint-with-features: add a chosen feature inside a region of an image. PGD maximizes one unit
 * of features() while the known-pixel penalty keeps the pixels outside the region where they
 * were: loss = -featureWeight * rep[:, unit] + penaltyWeight * mean(((x0 - x) * (1 - m))^2),
 * m = 1 on the region (the robustness library's 0.1 * rep[:, f] - 90 * mean(...) maximized).
 */
import { RobustSynthError } from '../errors.js';
import { checkBatch, type ImageBatch } from '../tensor.js';
import * as is from '../validate.js';
import { checkClassifier, COMMON_KEYS, resolveSettings, runBatched, type CommonTaskOptions } from './common.js';
import { defaultHole, holeMask, type Hole } from './inpaint.js';
import { featureList, unitValues, type FeatureTaskResult } from './visualizeFeature.js';

/** The reference's weight of the unit in the loss (REFERENCE_224 holds the penalty's, 90). */
export const PAINT_FEATURE_WEIGHT = 0.1;

export interface PaintFeatureOptions extends CommonTaskOptions {
  /** The images to paint on. */
  image: ImageBatch;
  /** The unit to add: one for every image, or one per image. */
  feature: number | number[];
  /** Where to paint (default: 60/224 of the side, centred, as inpainting's hole). */
  region?: Hole;
  /** Or a mask, 1 where the feature may be painted, [n or 1, 1, h, w]. */
  mask?: ImageBatch;
  /** Weight of the unit (default 0.1, as the reference). */
  featureWeight?: number;
  /** Weight of the penalty on pixels outside the region (default: the task's setting, 90). */
  penaltyWeight?: number;
}

export interface PaintFeatureResult extends FeatureTaskResult {
  /** The region, [n, c, h, w]: 1 where the feature was painted. */
  mask: ImageBatch;
}

/**
 * `before`/`after` hold the unit's value in features() of the image and of the result;
 * `targets` is the classifier's class of each image.
 *
 * @example
 * const r = await paintFeature({ classifier: clf, image, feature: 12, region: { x: 8, y: 8, width: 12, height: 12 } });
 */
export async function paintFeature(options: PaintFeatureOptions): Promise<PaintFeatureResult> {
  if (!is.isObject(options)) throw is.invalid('options', 'object', options);
  is.knownKeys('paintFeature options', options, [...COMMON_KEYS, 'image', 'feature', 'region', 'mask', 'featureWeight', 'penaltyWeight']);
  const clf = checkClassifier(options);
  const [c, h, w] = clf.inputShape;
  const image = checkBatch('image', options.image, { c, h, w });
  const n = image.shape[0];
  const units = featureList(clf, 'feature', options.feature);
  if (units.length !== 1 && units.length !== n) throw is.invalid('feature', `one unit or one per image (${n})`, options.feature);
  const features = Int32Array.from({ length: n }, (_, i) => units[units.length === 1 ? 0 : i]!);
  if (options.region && options.mask) throw new RobustSynthError('ERR_BAD_INPUT', 'give either region or mask, not both');
  let m: ImageBatch;
  if (options.mask) {
    m = checkBatch('mask', options.mask);
    const [mn, mc, mh, mw] = m.shape;
    if ((mn !== 1 && mn !== n) || mc !== 1 || mh !== h || mw !== w) {
      throw new RobustSynthError('ERR_BAD_INPUT', `mask has shape [${m.shape.join(', ')}]; expected [${n} or 1, 1, ${h}, ${w}]`);
    }
  } else {
    const region = options.region ?? defaultHole(h, w);
    if (!is.isObject(region)) throw is.invalid('region', '{ x, y, width, height }', region);
    is.integer('region.x', region.x, { min: 0, max: w - 1 });
    is.integer('region.y', region.y, { min: 0, max: h - 1 });
    is.integer('region.width', region.width, { min: 1, max: w - region.x });
    is.integer('region.height', region.height, { min: 1, max: h - region.y });
    m = holeMask(region, h, w);
  }
  // One mask per image and channel, as the penalty wants it.
  const plane = h * w;
  const mask: ImageBatch = { data: new Float32Array(n * c * plane), shape: [n, c, h, w] };
  for (let i = 0; i < n; i++) for (let ch = 0; ch < c; ch++) mask.data.set(m.data.subarray((m.shape[0] === 1 ? 0 : i) * plane, ((m.shape[0] === 1 ? 0 : i) + 1) * plane), (i * c + ch) * plane);
  const settings = resolveSettings('paintFeature', options);
  if (options.penaltyWeight !== undefined) settings.penaltyWeight = is.finiteNumber('penaltyWeight', options.penaltyWeight, { min: 0 });
  const featureWeight = is.finiteNumber('featureWeight', options.featureWeight ?? PAINT_FEATURE_WEIGHT, { min: 0, minExclusive: true });
  const targets = await clf.predict(image);
  const r = await runBatched(
    'paintFeature',
    { ...options, classifier: clf },
    settings,
    image,
    targets,
    (s, e) => ({
      feature: { index: features[s]!, weight: featureWeight },
      penalty: { weight: settings.penaltyWeight ?? 0, mask: { data: mask.data.subarray(s * c * plane, e * c * plane), shape: [e - s, c, h, w] } },
    }),
    features,
  );
  return { ...r, features, mask, before: await unitValues(clf, image, features), after: await unitValues(clf, r.images, features) };
}
