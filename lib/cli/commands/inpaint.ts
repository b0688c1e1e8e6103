/** `robust-synth inpaint`: fill a hole so the image reads as its class (the library's inpaint()). */
import { basename, extname } from 'node:path';
import { RobustSynthError } from '../../errors.js';
import { readImage } from '../../images.js';
import { inpaint, type Hole } from '../../tasks/inpaint.js';
import { required, type Command } from '../command.js';
import { readTaskFlags, TASK_OPTIONS, withModel } from '../task-command.js';

function parseHole(s: string): Hole {
  const parts = s.split(',').map((p) => (p.trim() === '' ? NaN : Number(p)));
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p))) throw new RobustSynthError('ERR_BAD_INPUT', `--hole must be x,y,w,h (four integers), got '${s}'`);
  return { x: parts[0]!, y: parts[1]!, width: parts[2]!, height: parts[3]! };
}

export const inpaintCommand: Command = {
  name: 'inpaint',
  usage: '--image FILE [--hole x,y,w,h | --mask FILE] [--label CLASS] [options]',
  options: {
    image: { type: 'string', value: 'FILE', description: 'the complete image; the hole is cut out of it' },
    hole: { type: 'string', value: 'x,y,w,h', description: 'the region to erase, in model pixels (default: 60/224 of the side, centred)' },
    mask: { type: 'string', value: 'FILE', description: 'or a mask image, white on the hole' },
    label: { type: 'string', value: 'CLASS', description: "the class the image should read as (default: the model's prediction)" },
    ...TASK_OPTIONS,
  },
  async run(values) {
    const image = required(values, 'image', 'the image to inpaint');
    const hole = values.hole === undefined ? undefined : parseHole(String(values.hole));
    const label = values.label as string | undefined;
    const flags = readTaskFlags(values, 'out/inpaint');
    return withModel(flags, async (run) => {
      const [, h, w] = run.clf.inputShape;
      const x = await run.read(image);
      const mask = values.mask ? await readImage(String(values.mask), { channels: 1, height: h, width: w }) : undefined;
      const r = await run.task('inpaint', (o) => inpaint({ ...o, image: x, hole, mask, label }));
      const stem = basename(image, extname(image));
      await run.writeImage(`${stem}-masked.png`, r.starts);
      await run.writeResults(r, [`${stem}-inpainted.png`], [image]);
      await run.contactSheet([x, r.starts, r.images]);
      console.log(`wrote ${stem}-inpainted.png to ${run.dir}`);
      return 0;
    });
  },
};
