/**
 * `robust-synth setup` as a standalone script, for when the CLI is not on PATH:
 *
 *   tsx scripts/download-libtorch.ts [--check] [--variant cpu|cuda] ...
 *   node node_modules/robust-synth/dist/scripts/download-libtorch.js --check     (installed)
 *
 * The command itself lives in lib/libtorch/setup.ts; this entry only runs it.
 */
import { runSetupCommand } from '../lib/libtorch/setup.js';

runSetupCommand(process.argv.slice(2)).then(
  (code) => (process.exitCode = code),
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exitCode = 1;
  },
);
