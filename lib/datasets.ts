/** Datasets: Fashion-MNIST's gzipped IDX files and ImageFolder trees such as Imagenette. */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { packageRoot } from '../binding/root.js';
import { RobustSynthError } from './errors.js';
import { isImageFile, readImage } from './images.js';
import type { ImageBatch } from './tensor.js';

export interface LabeledImages {
  images: ImageBatch;
  labels: Int32Array;
  /** Class names indexed by label. */
  classes: string[];
  /** Files that could not be read (ImageFolder), with why. */
  skipped: Array<{ path: string; reason: string }>;
}

/** Where Fashion-MNIST is read from by default: Debian's dataset-fashion-mnist package. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';
/** An environment variable naming another directory that holds Fashion-MNIST's four .gz files. */
export const FASHION_MNIST_ENV = 'ROBUST_SYNTH_FASHION_MNIST';
export const FASHION_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

/** How many Fashion-MNIST test images the package ships (assets/fashion-mnist): the first ones, in order. */
export const FASHION_EXAMPLES = 500;

/** Where the shipped Fashion-MNIST test images are (built by scripts/make-fashion-examples.ts). */
export function fashionExamplesDir(): string {
  return join(packageRoot(), 'assets', 'fashion-mnist');
}

/**
 * The first `limit` (at most {@link FASHION_EXAMPLES}) Fashion-MNIST test images, from the copy
 * the package ships: what the demo and the playground's examples need, with no data set
 * installed. Equal to `readFashionMnist('test', { limit })`.
 */
export function readFashionExamples(limit = FASHION_EXAMPLES): LabeledImages {
  if (!Number.isInteger(limit) || limit < 1 || limit > FASHION_EXAMPLES) {
    throw new RobustSynthError('ERR_BAD_INPUT', `the package ships ${FASHION_EXAMPLES} Fashion-MNIST test images; asked for ${limit} (readFashionMnist reads the whole data set)`);
  }
  return readFashionMnist('test', { dir: fashionExamplesDir(), limit });
}

/** Imagenette's WordNet-id folders and their ImageNet class indices. */
export const IMAGENETTE: ReadonlyArray<{ wnid: string; index: number; name: string }> = [
  { wnid: 'n01440764', index: 0, name: 'tench' },
  { wnid: 'n02102040', index: 217, name: 'English springer' },
  { wnid: 'n02979186', index: 482, name: 'cassette player' },
  { wnid: 'n03000684', index: 491, name: 'chain saw' },
  { wnid: 'n03028079', index: 497, name: 'church' },
  { wnid: 'n03394916', index: 566, name: 'French horn' },
  { wnid: 'n03417042', index: 569, name: 'garbage truck' },
  { wnid: 'n03425413', index: 571, name: 'gas pump' },
  { wnid: 'n03445777', index: 574, name: 'golf ball' },
  { wnid: 'n03888605', index: 701, name: 'parachute' },
];

function readIdx(path: string): { dims: number[]; data: Uint8Array } {
  if (!existsSync(path)) {
    throw new RobustSynthError(
      'ERR_BAD_INPUT',
      `${path} not found; on Debian install the data set with: apt-get install dataset-fashion-mnist (or set ${FASHION_MNIST_ENV} to a directory holding its .gz files)`,
    );
  }
  const raw = gunzipSync(readFileSync(path));
  const ndim = raw[3]!;
  const dims = Array.from({ length: ndim }, (_, i) => raw.readUInt32BE(4 + 4 * i));
  return { dims, data: new Uint8Array(raw.buffer, raw.byteOffset + 4 + 4 * ndim, dims.reduce((a, b) => a * b, 1)) };
}

/**
 * Fashion-MNIST from its gzipped IDX files.
 * @param options.offset, options.limit pick a contiguous range (test sets are shuffled already).
 */
export function readFashionMnist(split: 'train' | 'test', options: { dir?: string; offset?: number; limit?: number } = {}): LabeledImages {
  const dir = options.dir ?? (process.env[FASHION_MNIST_ENV] || FASHION_MNIST_DIR);
  const prefix = split === 'train' ? 'train' : 't10k';
  const img = readIdx(join(dir, `${prefix}-images-idx3-ubyte.gz`));
  const lab = readIdx(join(dir, `${prefix}-labels-idx1-ubyte.gz`));
  const total = img.dims[0]!;
  const offset = Math.min(options.offset ?? 0, total);
  const n = Math.min(options.limit ?? total, total - offset);
  const [h, w] = [img.dims[1]!, img.dims[2]!];
  const data = new Float32Array(n * h * w);
  const src = img.data.subarray(offset * h * w, (offset + n) * h * w);
  for (let i = 0; i < data.length; i++) data[i] = src[i]! / 255;
  return {
    images: { data, shape: [n, 1, h, w] },
    labels: Int32Array.from(lab.data.subarray(offset, offset + n)),
    classes: FASHION_CLASSES,
    skipped: [],
  };
}


/**
 * An ImageFolder tree (`root/<class>/<image>`), decoded and resized to the model's input.
 * Folder names map to labels: an Imagenette WordNet id to its ImageNet index, else a name in
 * `classes` (case-insensitive), else a number. Unreadable files are reported in `skipped`.
 */
export async function readImageFolder(
  root: string,
  o: { channels: number; height: number; width: number; classes: string[]; limitPerClass?: number; onSkip?: (path: string, reason: string) => void },
): Promise<LabeledImages> {
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new RobustSynthError('ERR_BAD_INPUT', `${root} is not a directory (expected root/<class>/<image files>)`);
  }
  const folders = readdirSync(root, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  const images: Float32Array[] = [];
  const labels: number[] = [];
  const skipped: LabeledImages['skipped'] = [];
  for (const folder of folders) {
    const label = folderLabel(folder, o.classes);
    if (label === undefined) {
      skipped.push({ path: join(root, folder), reason: 'folder name is not a known class' });
      o.onSkip?.(join(root, folder), 'folder name is not a known class');
      continue;
    }
    let files = readdirSync(join(root, folder)).filter(isImageFile).sort();
    if (o.limitPerClass !== undefined) files = files.slice(0, o.limitPerClass);
    for (const f of files) {
      const path = join(root, folder, f);
      try {
        images.push((await readImage(path, o)).data);
        labels.push(label);
      } catch (e) {
        const reason = (e as Error).message;
        skipped.push({ path, reason });
        o.onSkip?.(path, reason);
      }
    }
  }
  const size = o.channels * o.height * o.width;
  const data = new Float32Array(images.length * size);
  images.forEach((im, i) => data.set(im, i * size));
  return { images: { data, shape: [images.length, o.channels, o.height, o.width] }, labels: Int32Array.from(labels), classes: o.classes, skipped };
}

function folderLabel(folder: string, classes: string[]): number | undefined {
  const nette = IMAGENETTE.find((c) => c.wnid === folder);
  if (nette && classes.length === 1000) return nette.index;
  const byName = classes.findIndex((c) => c.toLowerCase() === folder.toLowerCase());
  if (byName >= 0) return byName;
  if (/^\d+$/.test(folder) && Number(folder) < classes.length) return Number(folder);
  return undefined;
}
