/** `robust-synth setup`: find or download LibTorch (lib/setup.ts; it parses its flags and prints its own help). */
import type { Command } from '../command.js';

export const setupCommand: Command = {
  name: 'setup',
  usage: '[--check] [--variant cpu|cuda] [options]',
  options: {},
  raw: true,
  async run(_values, argv) {
    return (await import('../../setup.js')).runSetupCommand(argv);
  },
};
