/** `robust-synth build`: compile the addon from source for the LibTorch found (lib/setup.ts; it parses its flags and prints its own help). */
import type { Command } from '../command.js';

export const buildCommand: Command = {
  name: 'build',
  usage: '[--libtorch DIR]',
  options: {},
  raw: true,
  async run(_values, argv) {
    return (await import('../../setup.js')).runBuildCommand(argv);
  },
};
