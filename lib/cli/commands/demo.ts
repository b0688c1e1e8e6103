/** `robust-synth demo`: every task on the embedded robust and standard models, as one gallery (lib/demo.ts). */
import { resolve } from 'node:path';
import * as is from '../../validate.js';
import { checkOutDir, numberFlag, type Command } from '../command.js';

export const demoCommand: Command = {
  name: 'demo',
  usage: '[--out DIR] [--count N] [--device cpu|cuda|cuda:N|auto]',
  // The flags lib/demo.ts's runDemo() reads: checked here, then handed to it.
  options: {
    out: { type: 'string', default: 'robust-synth-demo', value: 'DIR', description: 'where the gallery (index.html, PNG grids, gallery.json) goes' },
    count: { type: 'string', default: '6', value: 'N', description: 'generated images per class and seed kind' },
    device: { type: 'string', default: 'auto', value: 'cpu|cuda|cuda:N|auto', description: 'where to compute' },
  },
  async run(values, argv) {
    is.integer('count', numberFlag(values, 'count'), { min: 1 });
    checkOutDir(resolve(String(values.out)));
    return (await import('../../demo.js')).runDemo(argv);
  },
};
