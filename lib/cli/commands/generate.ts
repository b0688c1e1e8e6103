/** `robust-synth generate`: class-conditional generation (the library's generate()). */
import { SEED_KINDS } from '../../seeds.js';
import { generate } from '../../tasks/generate.js';
import * as is from '../../validate.js';
import { numberFlag, plural, required, type Command } from '../command.js';
import { slug } from '../../manifest.js';
import { readTaskFlags, TASK_OPTIONS, withModel } from '../task-command.js';

export const generateCommand: Command = {
  name: 'generate',
  usage: '--class NAME|INDEX [--class ...] [--count N] [--seed uniform|normal|mvn] [--seeds FILE] [options]',
  options: {
    class: { type: 'string', multiple: true, value: 'NAME|INDEX', description: 'a class to generate', params: ['classes'] },
    count: { type: 'string', value: 'N', description: 'images per class (default: 1)' },
    seed: { type: 'string', default: 'mvn', value: 'uniform|normal|mvn', description: 'the seed distribution PGD starts from' },
    seeds: { type: 'string', value: 'FILE', description: 'fitted seed statistics (robust-synth fit-seeds); the embedded models find theirs' },
    'random-seed': { type: 'string', value: 'N', description: "the sampler's random seed (default: 0)" },
    ...TASK_OPTIONS,
  },
  async run(values) {
    required(values, 'class', 'a class name or index; repeatable');
    const seed = is.oneOf('seed', values.seed, SEED_KINDS);
    const count = numberFlag(values, 'count') ?? 1;
    const randomSeed = numberFlag(values, 'random-seed');
    const flags = readTaskFlags(values, 'out/generate');
    return withModel(flags, async (run) => {
      const r = await run.task('generate', (o) => generate({ ...o, classes: values.class as string[], count, seed, seeds: values.seeds as string | undefined, randomSeed }));
      const names = Array.from(r.targets, (k, i) => `${slug(run.clf.classes[k]!)}-${seed}-${i}.png`);
      await run.writeResults(r, names, names.map(() => `seed:${seed}`));
      await run.contactSheet();
      console.log(`wrote ${plural(names.length, 'image')}, manifest.json and contact-sheet.png to ${run.dir}`);
      return 0;
    });
  },
};
