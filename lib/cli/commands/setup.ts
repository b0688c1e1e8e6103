/** `robust-synth setup`: find the LibTorch robust-synth will use, or download one (lib/libtorch/setup.ts). */
import type { Command } from '../command.js';

export const setupCommand: Command = {
  name: 'setup',
  usage: '[--check] [--variant cpu|cuda] [options]',
  options: {
    check: { type: 'boolean', default: false, description: 'print what would be used and why; change nothing' },
    variant: { type: 'string', value: 'cpu|cuda|cu118|cu121|cu124', description: 'the LibTorch build to download (default: CUDA when the NVIDIA driver supports it, else cpu)' },
    force: { type: 'boolean', default: false, description: 'download even when a usable LibTorch is already found' },
    archive: { type: 'string', value: 'ZIP', description: 'install from a LibTorch zip copied onto this machine (offline); $LIBTORCH, when set, still wins' },
    mirror: { type: 'string', value: 'URL', description: 'download from a mirror of download.pytorch.org (also $ROBUST_SYNTH_LIBTORCH_MIRROR)' },
    sha256: { type: 'string', value: 'HEX', description: "the archive's expected sha256 (needed where none is pinned)" },
    'no-verify': { type: 'boolean', default: false, description: 'install without a checksum (prints the sha256 it got)' },
  },
  async run(values) {
    const { runSetup } = await import('../../libtorch/setup.js');
    const str = (k: string) => (values[k] === undefined ? undefined : String(values[k]));
    return runSetup({
      check: Boolean(values.check),
      variant: str('variant'),
      force: Boolean(values.force),
      archive: str('archive'),
      mirror: str('mirror'),
      sha256: str('sha256'),
      'no-verify': Boolean(values['no-verify']),
    });
  },
};
