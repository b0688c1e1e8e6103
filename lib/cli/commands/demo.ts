/** `robust-synth demo`: every task on the embedded robust and standard models, as one gallery (lib/demo.ts). */
import { resolve } from 'node:path';
import type { Device } from '../../classifier.js';
import { checkOutDir, numberFlag, type Command } from '../command.js';

export const demoCommand: Command = {
  name: 'demo',
  usage: '[--out DIR] [--count N] [--device cpu|cuda|cuda:N|auto]',
  options: {
    out: { type: 'string', default: 'robust-synth-demo', value: 'DIR', description: 'where the gallery (index.html, PNG grids, gallery.json) goes' },
    count: { type: 'string', default: '6', value: 'N', description: 'generated images per class and seed kind' },
    device: { type: 'string', default: 'auto', value: 'cpu|cuda|cuda:N|auto', description: 'where to compute' },
  },
  async run(values) {
    const out = checkOutDir(resolve(String(values.out)));
    const { runDemo } = await import('../../demo.js');
    const r = await runDemo({ out, count: numberFlag(values, 'count'), device: String(values.device) as Device });
    console.log(`demo gallery written to ${r.index} (${r.seconds.toFixed(0)} s)`);
    return 0;
  },
};
