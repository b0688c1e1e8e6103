/** `robust-synth invert`: an image whose representation is a target image's (the library's invert()). */
import { basename, extname } from 'node:path';
import { invert, type InvertResult } from '../../tasks/invert.js';
import { numberFlag, required, type Command } from '../command.js';
import { readTaskFlags, TASK_OPTIONS, withModel } from '../task-command.js';

export const invertCommand: Command = {
  name: 'invert',
  usage: '--target FILE [--start FILE] [--random-seed N] [options]',
  options: {
    target: { type: 'string', value: 'FILE', description: 'the image whose representation to reach' },
    start: { type: 'string', value: 'FILE', description: 'start from this image (default: noise, N(0.5, 1/20^2) per pixel)' },
    'random-seed': { type: 'string', value: 'N', description: "the noise start's random seed (default: 0)" },
    ...TASK_OPTIONS,
  },
  async run(values) {
    const target = required(values, 'target', 'the image whose representation to reach');
    const start = values.start as string | undefined;
    const randomSeed = numberFlag(values, 'random-seed');
    const flags = readTaskFlags(values, 'out/invert');
    return withModel(flags, async (run) => {
      const t = await run.read(target);
      const s = start === undefined ? undefined : await run.read(start);
      // run.task types its result as a TaskResult; keep this task's own.
      let r!: InvertResult;
      await run.task('invert', async (o) => (r = await invert({ ...o, target: t, start: s, randomSeed })));
      const stem = basename(target, extname(target));
      const name = `${stem}-inverted${start === undefined ? '' : `-from-${basename(start, extname(start))}`}.png`;
      await run.writeResults(r, [name], [target]);
      await run.contactSheet([r.starts, r.images, t]);
      console.log(`wrote ${name} to ${run.dir} (representation distance, relative: ${r.distanceBefore[0]!.toFixed(3)} -> ${r.distanceAfter[0]!.toFixed(3)})`);
      return 0;
    });
  },
};
