/**
 * What generate, inpaint, super-resolve and translate share: the task flags, checking them
 * before any work, loading and disposing of the model, reading inputs, and writing each
 * output with its manifest entry and a contact sheet.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Classifier, setThreads, type Device } from '../classifier.js';
import { RobustSynthError } from '../errors.js';
import { writeFileAtomic } from '../atomic-write.js';
import { gridPng, readImage, writePng } from '../images.js';
import { Manifest, MANIFEST_FILE, manifestEntry, readManifest } from '../manifest.js';
import type { CommonTaskOptions, TaskResult } from '../tasks/common.js';
import { concat, type ImageBatch } from '../tensor.js';
import { checkOutDir, inputShapeFlag, numberFlag, type OptionSpecs, type Values } from './command.js';
import { progressReporter, type ProgressReporter } from '../progress.js';

/** The flags every task command takes. */
export const TASK_OPTIONS: OptionSpecs = {
  model: { type: 'string', default: 'fashion-robust', value: 'NAME|PATH', description: 'the classifier: an embedded or --model-dir model name (robust-synth models lists them), or a TorchScript .pt path' },
  out: { type: 'string', value: 'DIR', description: 'output directory, created if absent; outputs already listed in its manifest.json are kept (default: out/<command>)' },
  eps: { type: 'string', value: 'X', description: "radius of the L2 ball PGD stays in (default: the task's setting for the model's input size)" },
  step: { type: 'string', value: 'X', description: "PGD step size (default: the task's setting)" },
  iterations: { type: 'string', value: 'N', description: "PGD steps (default: the task's setting)" },
  device: { type: 'string', default: 'auto', value: 'cpu|cuda|cuda:N|auto', description: 'where to compute' },
  batch: { type: 'string', value: 'N', description: 'images per native call (default: 64 below 64x64 pixels, else 8)' },
  threads: { type: 'string', value: 'N|auto', description: "CPU threads for the compute (default: auto, the cores other processes leave free)" },
  bf16: { type: 'boolean', default: false, description: 'compute in bf16 autocast (faster on CPUs and GPUs that have it)' },
  'model-dir': { type: 'string', multiple: true, value: 'DIR', description: 'a directory to look for --model NAME in', params: ['modelDirs'] },
  'input-shape': { type: 'string', value: 'C,H,W', description: "the model's input shape, for a model without a model card" },
};

/** The task flags, read and checked: nothing here loads a model or computes. */
export interface TaskFlags {
  dir: string;
  model: string;
  device: Device;
  modelDirs: string[];
  inputShape?: [number, number, number];
  threads?: number | 'auto';
  eps?: number;
  step?: number;
  iterations?: number;
  batch?: number;
  bf16: boolean;
}

export function readTaskFlags(values: Values, defaultOut: string): TaskFlags {
  const dir = checkOutDir(resolve(String(values.out ?? defaultOut)));
  readManifest(join(dir, MANIFEST_FILE)); // a manifest that cannot be read is refused before the model loads
  const inputShape = inputShapeFlag(values);
  let threads: number | 'auto' | undefined = values.threads === 'auto' ? 'auto' : undefined;
  if (values.threads !== undefined && threads === undefined) {
    const s = String(values.threads);
    threads = s.trim() === '' ? NaN : Number(s);
    if (Number.isNaN(threads)) throw new RobustSynthError('ERR_BAD_INPUT', `--threads must be a number or 'auto', got '${s}'`);
  }
  return {
    dir,
    model: String(values.model),
    device: String(values.device) as Device,
    modelDirs: (values['model-dir'] as string[] | undefined) ?? [],
    inputShape,
    threads,
    eps: numberFlag(values, 'eps'),
    step: numberFlag(values, 'step'),
    iterations: numberFlag(values, 'iterations'),
    batch: numberFlag(values, 'batch'),
    bf16: Boolean(values.bf16),
  };
}

// The manifest moved to lib/manifest.ts; these re-exports keep old imports working.
export { Manifest, manifestEntry, slug, type ManifestEntry } from '../manifest.js';

/** A loaded model and the output directory of one task command. */
export class TaskRun {
  readonly manifest: Manifest;
  constructor(
    readonly flags: TaskFlags,
    readonly clf: Classifier,
  ) {
    this.manifest = new Manifest(flags.dir);
  }

  get dir(): string {
    return this.flags.dir;
  }

  /** The library options the task flags give, reporting progress to `progress`. */
  options(progress: ProgressReporter): CommonTaskOptions {
    const f = this.flags;
    return { classifier: this.clf, eps: f.eps, step: f.step, iterations: f.iterations, batch: f.batch, bf16: f.bf16, onProgress: progress.update };
  }

  /** Runs one task call with a progress reporter labelled `label`. */
  async task(label: string, call: (options: CommonTaskOptions) => Promise<TaskResult>): Promise<TaskResult> {
    const progress = progressReporter(label);
    try {
      return await call(this.options(progress));
    } finally {
      progress.done();
    }
  }

  /** An image file at the model's input shape (resized and cropped). */
  read(path: string): Promise<ImageBatch> {
    const [c, h, w] = this.clf.inputShape;
    return readImage(path, { channels: c, height: h, width: w });
  }

  /** Writes a batch's first image (an intermediate such as the masked input) into the output directory. */
  async writeImage(name: string, batch: ImageBatch, index = 0): Promise<void> {
    await writePng(join(this.dir, name), batch, index);
  }

  /** Writes each result image and its manifest entry, then the manifest. */
  async writeResults(r: TaskResult, names: string[], sources: string[]): Promise<void> {
    const clf = this.clf;
    for (let i = 0; i < names.length; i++) {
      await writePng(join(this.dir, names[i]!), r.images, i);
      this.manifest.add(manifestEntry(r, i, clf, names[i]!, sources[i]!, clf.name));
    }
    this.manifest.save();
  }

  /** contact-sheet.png: the given rows, or else every output the manifest lists, ten to a row. */
  async contactSheet(rows?: ImageBatch[]): Promise<void> {
    const path = join(this.dir, 'contact-sheet.png');
    if (rows) {
      writeFileAtomic(path, await gridPng(rows));
      return;
    }
    const imgs: ImageBatch[] = [];
    for (const e of this.manifest.entries) if (existsSync(join(this.dir, e.file))) imgs.push(await this.read(join(this.dir, e.file)));
    if (imgs.length) writeFileAtomic(path, await gridPng(concat(imgs), { columns: Math.min(10, imgs.length) }));
  }
}

/**
 * Loads the model the flags name, runs `body` with it, and disposes of it whatever happens.
 * Everything the flags alone can refuse was refused by readTaskFlags, before this.
 */
export async function withModel<T>(flags: TaskFlags, body: (run: TaskRun) => Promise<T>): Promise<T> {
  if (flags.threads !== undefined) setThreads(flags.threads);
  const clf = await Classifier.load(flags.model, { device: flags.device, modelDirs: flags.modelDirs, ...(flags.inputShape ? { inputShape: flags.inputShape } : {}) });
  try {
    return await body(new TaskRun(flags, clf));
  } finally {
    await clf.dispose();
  }
}
