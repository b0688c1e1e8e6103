/** `robust-synth super-resolve`: reduce, then restore with PGD toward the label (the library's superResolve()). */
import { basename, extname } from 'node:path';
import { superResolve } from '../../tasks/superResolve.js';
import { numberFlag, required, type Command } from '../command.js';
import { readTaskFlags, TASK_OPTIONS, withModel } from '../task-command.js';

export const superResolveCommand: Command = {
  name: 'super-resolve',
  usage: '--image FILE [--factor N] [--label CLASS] [options]',
  options: {
    image: { type: 'string', value: 'FILE', description: "an image at the model's resolution; it is reduced by --factor first, as in the study" },
    factor: { type: 'string', value: 'N', description: 'the integer reduction factor (default: 8 at 224x224, 4 at 28x28)' },
    label: { type: 'string', value: 'CLASS', description: "the image's class (default: the model's prediction on the low-res start)" },
    ...TASK_OPTIONS,
  },
  async run(values) {
    const image = required(values, 'image', 'the image to super-resolve');
    const factor = numberFlag(values, 'factor');
    const label = values.label as string | undefined;
    const flags = readTaskFlags(values, 'out/super-resolve');
    return withModel(flags, async (run) => {
      const x = await run.read(image);
      const r = await run.task('super-resolve', (o) => superResolve({ ...o, image: x, factor, label }));
      const stem = basename(image, extname(image));
      await run.writeImage(`${stem}-lowres.png`, r.starts);
      await run.writeResults(r, [`${stem}-super-resolved.png`], [image]);
      await run.contactSheet([r.starts, r.images, x]);
      console.log(`wrote ${stem}-super-resolved.png to ${run.dir}`);
      return 0;
    });
  },
};
