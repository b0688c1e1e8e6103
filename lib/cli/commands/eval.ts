/**
 * `robust-synth eval`: the study's claims measured on the embedded models by three judges of
 * unrelated families (a CNN, an MLP, a kNN on pixels; lib/eval/judges.ts), each shown, the claims
 * on the least favourable one (lib/eval).
 */
import { resolve } from 'node:path';
import { checkOutDir, type Command } from '../command.js';

export const evalCommand: Command = {
  name: 'eval',
  usage: '[--quick] [--bf16] [--out DIR] [--device cpu|cuda|cuda:N|auto] [--robust NAME|PATH]',
  options: {
    quick: { type: 'boolean', default: false, description: 'a smaller sample: fewer images per measurement, a quicker run' },
    out: { type: 'string', default: 'robust-synth-eval', value: 'DIR', description: 'where report.json, report.md, report.html and the grids go' },
    device: { type: 'string', default: 'auto', value: 'cpu|cuda|cuda:N|auto', description: 'where to compute' },
    bf16: { type: 'boolean', default: false, description: 'synthesize in bf16 autocast (the judges stay fp32)' },
    robust: { type: 'string', default: 'fashion-robust', value: 'NAME|PATH', description: 'the robust model to evaluate beside fashion-standard', params: ['model'] },
  },
  async run(values) {
    checkOutDir(resolve(String(values.out)));
    return (await import('../../eval/index.js')).runEval({
      quick: Boolean(values.quick),
      out: String(values.out),
      device: String(values.device),
      bf16: Boolean(values.bf16),
      robust: String(values.robust),
    });
  },
};
