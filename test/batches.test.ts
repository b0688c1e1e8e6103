// Every device batch at its size (lib/tasks/pad.ts): an image's result depends only on it and
// the settings, batch size included, whichever images share its batch and wherever it sits,
// also in a partial last batch and for the tasks whose objective has per-image parts (the
// inpainting penalty's mask and reference, the inversion target).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Classifier, setThreads } from '../lib/classifier.js';
import { readFashionExamples } from '../lib/datasets.js';
import { inpaint } from '../lib/tasks/inpaint.js';
import { invert } from '../lib/tasks/invert.js';
import { translate } from '../lib/tasks/translate.js';
import { padRows, padTargets } from '../lib/tasks/pad.js';
import { concat, slice, type ImageBatch } from '../lib/tensor.js';

let clf: Classifier;
let images: ImageBatch;
const one = (i: number) => slice(images, i, i + 1);
const row = (b: ImageBatch, i: number) => Array.from(slice(b, i, i + 1).data);

beforeAll(async () => {
  setThreads(1);
  clf = await Classifier.load('fashion-robust', { device: 'cpu' });
  images = readFashionExamples(8).images;
});
afterAll(async () => {
  await clf?.dispose();
});

it('padRows and padTargets fill with copies of the first row, and leave full batches alone', () => {
  const t = { data: Float32Array.from([1, 2, 3, 4]), shape: [2, 2] };
  expect(Array.from(padRows(t, 2, 4).data)).toEqual([1, 2, 3, 4, 1, 2, 1, 2]);
  expect(padRows(t, 2, 4).shape).toEqual([4, 2]);
  expect(padRows(t, 2, 2)).toBe(t);
  expect(Array.from(padTargets(Int32Array.from([7, 3]), 3))).toEqual([7, 3, 7]);
});

it('translate: image k gives the same result at any position, with any neighbours, and in a partial last batch', async () => {
  const o = { classifier: clf, to: 1, iterations: 8, batch: 3 };
  const a = await translate({ ...o, image: concat([one(0), one(1), one(2), one(3)]) }); // image 3 alone in a partial batch
  const b = await translate({ ...o, image: concat([one(5), one(3), one(6)]) }); // image 3 in the middle of a full one
  const c = await translate({ ...o, image: one(3) }); // a batch of one row padded to three
  expect(row(b.images, 1)).toEqual(row(a.images, 3));
  expect(row(c.images, 0)).toEqual(row(a.images, 3));
  expect(b.losses[1]).toBe(a.losses[3]);
  expect(a.images.shape[0]).toBe(4);
  expect(a.losses).toHaveLength(4);
});

it('inpaint and invert: the per-image mask, reference and inversion target are padded with the batch', async () => {
  const hole = { x: 8, y: 8, width: 10, height: 10 };
  const ia = await inpaint({ classifier: clf, image: concat([one(0), one(1), one(2)]), hole, iterations: 6, batch: 2 });
  const ib = await inpaint({ classifier: clf, image: concat([one(2), one(4)]), hole, iterations: 6, batch: 2 });
  expect(row(ib.images, 0)).toEqual(row(ia.images, 2));
  const va = await invert({ classifier: clf, target: concat([one(0), one(1), one(2)]), start: concat([one(7), one(6), one(5)]), iterations: 6, batch: 2 });
  const vb = await invert({ classifier: clf, target: concat([one(2), one(0)]), start: concat([one(5), one(7)]), iterations: 6, batch: 2 });
  expect(row(vb.images, 0)).toEqual(row(va.images, 2));
  expect(row(vb.images, 1)).toEqual(row(va.images, 0));
});
