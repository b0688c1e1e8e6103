/** `robust-synth models`: the models robust-synth finds, with their cards (the library's listModels()). */
import { listModels } from '../../models.js';
import type { Command } from '../command.js';

export const modelsCommand: Command = {
  name: 'models',
  usage: '[--model-dir DIR] [--json]',
  options: {
    'model-dir': { type: 'string', multiple: true, value: 'DIR', description: 'also list the .pt models in DIR', params: ['modelDirs'] },
    dir: { type: 'string', multiple: true, value: 'DIR', description: '', aliasOf: 'model-dir' },
    json: { type: 'boolean', default: false, description: 'print JSON (class lists as counts)' },
  },
  run(values) {
    const models = listModels((values['model-dir'] as string[] | undefined) ?? []);
    if (values.json) {
      console.log(JSON.stringify(models.map(({ classes, ...m }) => ({ ...m, classes: classes.length })), null, 2));
      return 0;
    }
    for (const m of models) {
      const acc = m.accuracy ? Object.entries(m.accuracy).map(([k, v]) => `${k} ${(v * 100).toFixed(1)}%`).join(', ') : '';
      console.log(`${m.name.padEnd(20)} ${m.inputShape.join('x').padEnd(10)} ${String(m.classes.length).padStart(4)} classes  ${m.robust ? `robust (L2 eps ${m.eps})` : m.role ?? 'standard'}${acc ? `  ${acc}` : ''}\n${''.padEnd(21)}${m.path}`);
    }
    return 0;
  },
};
