/** `robust-synth sketch-to-image`: turn a sketch into an image of a class (the library's sketchToImage()). */
import { basename, extname } from 'node:path';
import { RobustSynthError } from '../../errors.js';
import { sketchFromImage } from '../../sketch.js';
import { sketchToImage } from '../../tasks/sketchToImage.js';
import { numberFlag, required, type Command } from '../command.js';
import { slug } from '../../manifest.js';
import { readTaskFlags, TASK_OPTIONS, withModel } from '../task-command.js';

export const sketchToImageCommand: Command = {
  name: 'sketch-to-image',
  usage: '(--sketch FILE | --photo FILE [--threshold X] [--no-invert]) --to CLASS [options]',
  options: {
    sketch: { type: 'string', value: 'FILE', description: 'a sketch (dark lines on white) to start from' },
    photo: { type: 'string', value: 'FILE', description: 'or a photograph to make the sketch from (Sobel edges, thresholded, inverted)' },
    threshold: { type: 'string', value: 'X', description: "with --photo: an edge is at least this fraction of the image's strongest; 0 keeps the magnitude (default: 0.25)" },
    'no-invert': { type: 'boolean', default: false, description: 'with --photo: white lines on black, as Fashion-MNIST draws garments (for the embedded models: far better, see models/README.md)', params: ['invert'] },
    to: { type: 'string', value: 'CLASS', description: 'the class the sketch depicts, a name or an index' },
    ...TASK_OPTIONS,
  },
  async run(values) {
    if ((values.sketch === undefined) === (values.photo === undefined)) throw new RobustSynthError('ERR_BAD_INPUT', 'give one of --sketch FILE or --photo FILE');
    const to = required(values, 'to', 'a class name or index');
    const threshold = numberFlag(values, 'threshold');
    if (values.sketch !== undefined && (threshold !== undefined || values['no-invert'])) {
      throw new RobustSynthError('ERR_BAD_INPUT', '--threshold and --no-invert apply to --photo only');
    }
    const flags = readTaskFlags(values, 'out/sketch-to-image');
    return withModel(flags, async (run) => {
      const src = String(values.sketch ?? values.photo);
      const stem = basename(src, extname(src));
      const x = await run.read(src);
      const sketch = values.photo === undefined ? x : sketchFromImage(x, { threshold, invert: !values['no-invert'] });
      if (values.photo !== undefined) await run.writeImage(`${stem}-sketch.png`, sketch);
      const r = await run.task('sketch-to-image', (o) => sketchToImage({ ...o, sketch, to }));
      const name = `${stem}-to-${slug(run.clf.classes[r.targets[0]!]!)}.png`;
      await run.writeResults(r, [name], [src]);
      await run.contactSheet(values.photo === undefined ? [sketch, r.images] : [x, sketch, r.images]);
      console.log(`wrote ${name} to ${run.dir} (the model reads it as ${run.clf.classes[r.predictions[0]!]})`);
      return 0;
    });
  },
};
