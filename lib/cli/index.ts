#!/usr/bin/env node
/**
 * The `robust-synth` command line: dispatch to one module per command (lib/cli/commands/),
 * the top-level usage, and exit codes: 0 success, 1 failure (or some inputs skipped), 2 bad
 * input (an invalid option, an unreadable image, a model that is not found, an unknown command).
 */
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import { runCommand, type Command } from './command.js';

export interface Entry {
  name: string;
  /** One line, in the top-level usage and atop the command's --help. */
  summary: string;
  /** Loaded on use, so that `setup` and `--help` need none of the others' dependencies. */
  load: () => Promise<Command>;
}

/** Every command, in the order the usage lists them. */
export const COMMANDS: readonly Entry[] = [
  { name: 'demo', summary: 'every task on the embedded robust and standard models, as one HTML gallery', load: async () => (await import('./commands/demo.js')).demoCommand },
  { name: 'generate', summary: 'class-conditional generation from seeds (uniform, normal or multivariate normal)', load: async () => (await import('./commands/generate.js')).generateCommand },
  { name: 'inpaint', summary: 'fill a hole in an image so that it reads as its class', load: async () => (await import('./commands/inpaint.js')).inpaintCommand },
  { name: 'super-resolve', summary: 'reduce an image, then restore it toward its class', load: async () => (await import('./commands/super-resolve.js')).superResolveCommand },
  { name: 'translate', summary: 'turn images (a file or a directory) toward another class', load: async () => (await import('./commands/translate.js')).translateCommand },
  { name: 'visualize-feature', summary: "what a unit of the model's representation encodes: maximize it from noise or an image", load: async () => (await import('./commands/visualize-feature.js')).visualizeFeatureCommand },
  { name: 'paint-feature', summary: "add a unit's feature inside a region of an image, keeping the rest", load: async () => (await import('./commands/paint-feature.js')).paintFeatureCommand },
  { name: 'invert', summary: "find an image whose representation is a target image's, from noise or another image", load: async () => (await import('./commands/invert.js')).invertCommand },
  { name: 'sketch-to-image', summary: 'turn a sketch (or the edges of a photo) into an image of a class', load: async () => (await import('./commands/sketch-to-image.js')).sketchToImageCommand },
  { name: 'fit-seeds', summary: 'fit the seed statistics generate samples from, on an image folder or Fashion-MNIST', load: async () => (await import('./commands/fit-seeds.js')).fitSeedsCommand },
  { name: 'eval', summary: "measure the study's claims on the embedded models with three judges of unrelated families", load: async () => (await import('./commands/eval.js')).evalCommand },
  { name: 'study', summary: 'the study at 224x224 from a robust and a standard ResNet50 and an Imagenette folder, as one HTML report', load: async () => (await import('./commands/study.js')).studyCommand },
  { name: 'serve', summary: 'a local web playground: pick a task, draw the hole, watch the image change', load: async () => (await import('./commands/serve.js')).serveCommand },
  { name: 'submit', summary: 'enqueue translate or generate as jobs for workers on a Redis queue, and follow them', load: async () => (await import('./commands/submit.js')).submitCommand },
  { name: 'worker', summary: 'take jobs from the Redis queue and run them in device batches', load: async () => (await import('./commands/worker.js')).workerCommand },
  { name: 'collect', summary: "write a detached submission's results from the queue into a directory", load: async () => (await import('./commands/collect.js')).collectCommand },
  { name: 'status', summary: "a queue's job counts and the workers seen", load: async () => (await import('./commands/status.js')).statusCommand },
  { name: 'models', summary: 'list the models robust-synth finds, with their cards', load: async () => (await import('./commands/models.js')).modelsCommand },
  { name: 'setup', summary: 'find or download LibTorch; --check says what this machine has', load: async () => (await import('./commands/setup.js')).setupCommand },
  { name: 'build', summary: 'compile the native addon from source for the LibTorch found', load: async () => (await import('./commands/build.js')).buildCommand },
];

const USAGE = `robust-synth: image synthesis with a single robust classifier

Usage: robust-synth COMMAND [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(19)}${c.summary}`).join('\n')}

robust-synth COMMAND --help lists a command's options.
The embedded models are fashion-robust and fashion-standard (Fashion-MNIST, 28x28).`;

/** The codes of what the user gave: a bad option, an unreadable image, a model that is not there. */
const BAD_INPUT_CODES = new Set(['ERR_BAD_INPUT', 'ERR_BAD_IMAGE', 'ERR_MODEL_NOT_FOUND']);

/** 2 for bad input (ours, or node's argument parser's ERR_PARSE_ARGS_*), 1 for anything else. */
export function exitCode(e: unknown): number {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && (BAD_INPUT_CODES.has(code) || code.startsWith('ERR_PARSE_ARGS')) ? 2 : 1;
}

/** One line on stderr: the command, the message, the code. */
export function reportError(command: string | undefined, e: unknown): void {
  const err = e as { code?: unknown; message?: unknown; stack?: unknown };
  const coded = typeof err?.code === 'string';
  const message = String(err?.message ?? e).replace(/\s*\n\s*/g, ' ');
  // An error without a code is a bug of ours: its stack says where.
  const detail = coded || typeof err?.stack !== 'string' ? '' : `\n${err.stack}`;
  console.error(`\nrobust-synth${command ? ` ${command}` : ''}: ${message}${coded ? ` [${String(err.code)}]` : ''}${detail}`);
}

/** Edit distance (insertions, deletions, substitutions, and swaps of neighbours). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** The known name a mistyped one most likely meant: a close spelling, or the one it starts. */
export function closest(name: string, names: readonly string[]): string | undefined {
  const s = name.toLowerCase();
  const prefix = names.filter((n) => s.length >= 3 && n.startsWith(s));
  if (prefix.length === 1) return prefix[0];
  let best: string | undefined;
  let bestD = Math.max(1, Math.min(3, Math.floor(s.length / 3)));
  for (const n of names) {
    const d = distance(s, n);
    if (d <= bestD && (best === undefined || d < distance(s, best))) [best, bestD] = [n, d];
  }
  return best;
}

/** Runs the command line `argv` (without node and the script); resolves with the exit code, having reported any error. */
export async function main(argv = process.argv.slice(2)): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    console.error(USAGE);
    return 1;
  }
  if (name === 'help' || name === '--help' || name === '-h') {
    const entry = COMMANDS.find((c) => c.name === rest[0]);
    if (!entry) {
      console.log(USAGE);
      return 0;
    }
    return main([entry.name, '--help']);
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    const near = closest(name, COMMANDS.map((c) => c.name));
    console.error(`robust-synth: unknown command '${name}'${near ? `; did you mean '${near}'?` : ''} [ERR_BAD_INPUT]\n\n${USAGE}`);
    return 2;
  }
  try {
    return await runCommand(await entry.load(), entry.summary, rest);
  } catch (e) {
    reportError(name, e);
    return exitCode(e);
  }
}

const invokedDirectly = process.argv[1] && realpathSync(process.argv[1]).replace(/\.ts$/, '.js').endsWith(join('lib', 'cli', 'index.js'));
if (invokedDirectly) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      reportError(undefined, e);
      process.exitCode = 1;
    },
  );
}
