/** `robust-synth build`: compile the addon from source for the LibTorch found (lib/build.ts). */
import type { Command } from '../command.js';

export const buildCommand: Command = {
  name: 'build',
  usage: '[--libtorch DIR]',
  options: {
    libtorch: { type: 'string', value: 'DIR', description: 'the LibTorch to build against (default: $LIBTORCH, else the one robust-synth setup --check lists as used); needs cmake >= 3.18 and a C++17 compiler' },
  },
  async run(values) {
    const { buildAddon } = await import('../../build.js');
    return buildAddon({ libtorch: values.libtorch as string | undefined });
  },
};
