/** `robust-synth paint-feature`: add a unit's feature inside a region of an image (the library's paintFeature()). */
import { basename, extname } from 'node:path';
import { RobustSynthError } from '../../errors.js';
import { readImage } from '../../images.js';
import type { Hole } from '../../tasks/inpaint.js';
import { paintFeature, type PaintFeatureResult } from '../../tasks/paintFeature.js';
import { numberFlag, required, type Command } from '../command.js';
import { readTaskFlags, TASK_OPTIONS, withModel } from '../task-command.js';

function parseRegion(s: string): Hole {
  const parts = s.split(',').map((p) => (p.trim() === '' ? NaN : Number(p)));
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p))) throw new RobustSynthError('ERR_BAD_INPUT', `--region must be x,y,w,h (four integers), got '${s}'`);
  return { x: parts[0]!, y: parts[1]!, width: parts[2]!, height: parts[3]! };
}

export const paintFeatureCommand: Command = {
  name: 'paint-feature',
  usage: '--image FILE --feature N [--region x,y,w,h | --mask FILE] [options]',
  options: {
    image: { type: 'string', value: 'FILE', description: 'the image to paint on' },
    feature: { type: 'string', value: 'N', description: "the unit of the model's features() to add (an index from 0)" },
    region: { type: 'string', value: 'x,y,w,h', description: 'where to paint, in model pixels (default: 60/224 of the side, centred)' },
    mask: { type: 'string', value: 'FILE', description: 'or a mask image, white where the feature may be painted' },
    'feature-weight': { type: 'string', value: 'X', description: "the unit's weight in the loss (default: 0.1, as the reference)" },
    'penalty-weight': { type: 'string', value: 'X', description: "the weight of the penalty on pixels outside the region (default: the task's setting)" },
    ...TASK_OPTIONS,
  },
  async run(values) {
    const image = required(values, 'image', 'the image to paint on');
    required(values, 'feature', 'a unit index');
    const feature = numberFlag(values, 'feature')!;
    const region = values.region === undefined ? undefined : parseRegion(String(values.region));
    const featureWeight = numberFlag(values, 'feature-weight');
    const penaltyWeight = numberFlag(values, 'penalty-weight');
    const flags = readTaskFlags(values, 'out/paint-feature');
    return withModel(flags, async (run) => {
      const [, h, w] = run.clf.inputShape;
      const x = await run.read(image);
      const mask = values.mask ? await readImage(String(values.mask), { channels: 1, height: h, width: w }) : undefined;
      // run.task types its result as a TaskResult; keep this task's own.
      let r!: PaintFeatureResult;
      await run.task('paint-feature', async (o) => (r = await paintFeature({ ...o, image: x, feature, region, mask, featureWeight, penaltyWeight })));
      const stem = basename(image, extname(image));
      const name = `${stem}-unit-${feature}.png`;
      await run.writeImage(`${stem}-region.png`, r.mask);
      await run.writeResults(r, [name], [image]);
      await run.contactSheet([x, r.mask, r.images]);
      console.log(`wrote ${name} to ${run.dir} (unit ${feature}: ${r.before[0]!.toFixed(3)} -> ${r.after[0]!.toFixed(3)})`);
      return 0;
    });
  },
};
