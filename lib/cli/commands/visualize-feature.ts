/** `robust-synth visualize-feature`: what a unit of the representation encodes (the library's visualizeFeature()). */
import { basename, extname } from 'node:path';
import { visualizeFeature, type FeatureTaskResult } from '../../tasks/visualizeFeature.js';
import { numberFlag, plural, required, type Command } from '../command.js';
import { readTaskFlags, TASK_OPTIONS, withModel } from '../task-command.js';

export const visualizeFeatureCommand: Command = {
  name: 'visualize-feature',
  usage: '--feature N [--feature ...] [--image FILE | --count N] [--random-seed N] [options]',
  options: {
    feature: { type: 'string', multiple: true, value: 'N', description: "a unit of the model's features() to maximize (an index from 0)" },
    image: { type: 'string', value: 'FILE', description: 'start from this image (default: noise, N(0.5, 1/20^2) per pixel)' },
    count: { type: 'string', value: 'N', description: 'noise starts per unit, without --image (default: 1)' },
    'random-seed': { type: 'string', value: 'N', description: "the noise start's random seed (default: 0)" },
    ...TASK_OPTIONS,
  },
  async run(values) {
    required(values, 'feature', 'a unit index; repeatable');
    const feature = (values.feature as string[]).map((s) => numberFlag({ feature: s }, 'feature')!);
    const image = values.image as string | undefined;
    const count = numberFlag(values, 'count');
    const randomSeed = numberFlag(values, 'random-seed');
    const flags = readTaskFlags(values, 'out/visualize-feature');
    return withModel(flags, async (run) => {
      const x = image === undefined ? undefined : await run.read(image);
      // run.task types its result as a TaskResult; keep this task's own.
      let r!: FeatureTaskResult;
      await run.task('visualize-feature', async (o) => (r = await visualizeFeature({ ...o, feature, image: x, count, randomSeed })));
      const stem = image === undefined ? 'noise' : basename(image, extname(image));
      const per = r.images.shape[0] / feature.length;
      const names = Array.from(r.features, (f, i) => `${stem}-unit-${f}${per > 1 ? `-${i % per}` : ''}.png`);
      await run.writeResults(r, names, names.map(() => image ?? `noise:${randomSeed ?? 0}`));
      await run.contactSheet([r.starts, r.images]);
      for (let i = 0; i < names.length; i++) console.log(`${names[i]}: unit ${r.features[i]} ${r.before[i]!.toFixed(3)} -> ${r.after[i]!.toFixed(3)}`);
      console.log(`wrote ${plural(names.length, 'image')}, manifest.json and contact-sheet.png to ${run.dir}`);
      return 0;
    });
  },
};
