/**
 * The study's data: an Imagenette folder (train/ and val/ of WordNet-id folders, as the official
 * archive unpacks, or one folder of WordNet-id folders, split deterministically), its validation
 * images at 224x224, and the seed distributions fitted on its training images (cached).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { IMAGENETTE, type LabeledImages } from '../datasets.js';
import { RobustSynthError } from '../errors.js';
import { isImageFile, readImage, writeFileAtomic } from '../images.js';
import { fitSeeds, loadSeeds, saveSeeds, type SeedModel } from '../seeds.js';
import type { ImageBatch } from '../tensor.js';

export const SIZE: [number, number, number] = [3, 224, 224];

export interface StudyClass {
  wnid: string;
  /** Its ImageNet index (the target of every task). */
  index: number;
  /** Its Imagenette name (every label on the page). */
  name: string;
  /** Image files, absolute paths, sorted by name. */
  train: string[];
  val: string[];
}

export interface ImagenetteFolder {
  root: string;
  layout: 'train-val' | 'split';
  /** How the split was made, for the page. */
  note: string;
  classes: StudyClass[];
  /** What was left out (unknown folders, classes without images), for the page. */
  ignored: string[];
}

const listImages = (dir: string) =>
  readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isFile() && isImageFile(d.name))
    .map((d) => join(dir, d.name))
    .sort();

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
const wnidFolders = (dir: string) => readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();

/** Every fifth image of a class (sorted by name: the 5th, 10th, ...) is held out as validation in the one-folder layout. */
export const SPLIT_EVERY = 5;

/**
 * Finds the classes of an Imagenette folder. `limitClasses`: keep the first N Imagenette
 * classes that have images (in Imagenette's order).
 */
export function discoverImagenette(root: string, limitClasses?: number): ImagenetteFolder {
  if (!isDir(root)) throw new RobustSynthError('ERR_BAD_INPUT', `--data must be a directory (Imagenette: DIR/train/<wnid>/, DIR/val/<wnid>/), got ${root}`);
  const ignored: string[] = [];
  const known = new Set(IMAGENETTE.map((c) => c.wnid));
  let layout: ImagenetteFolder['layout'];
  let note: string;
  const train = new Map<string, string[]>();
  const val = new Map<string, string[]>();
  if (isDir(join(root, 'train')) && isDir(join(root, 'val'))) {
    layout = 'train-val';
    note = 'train/ fits the seeds; every task runs on val/ images.';
    for (const [split, map] of [['train', train], ['val', val]] as const) {
      for (const f of wnidFolders(join(root, split))) {
        if (known.has(f)) map.set(f, listImages(join(root, split, f)));
        else ignored.push(`${split}/${f} (not an Imagenette WordNet id)`);
      }
    }
  } else {
    const folders = wnidFolders(root);
    if (!folders.some((f) => known.has(f))) {
      throw new RobustSynthError(
        'ERR_BAD_INPUT',
        `${root} has neither train/ and val/ folders nor Imagenette WordNet-id folders (${IMAGENETTE.slice(0, 2).map((c) => c.wnid).join(', ')}, ...); ` +
          'unpack imagenette2.tgz (or imagenette2-320.tgz) and pass its imagenette2 folder',
      );
    }
    layout = 'split';
    note =
      `One folder of WordNet-id folders, split deterministically: in each class, sorted by file name, every ${ordinal(SPLIT_EVERY)} image ` +
      `(the ${ordinal(SPLIT_EVERY)}, ${ordinal(2 * SPLIT_EVERY)}, ...) is held out as validation (${Math.round(100 / SPLIT_EVERY)} %) and the rest fit the seeds.`;
    for (const f of folders) {
      if (!known.has(f)) {
        ignored.push(`${f} (not an Imagenette WordNet id)`);
        continue;
      }
      const files = listImages(join(root, f));
      train.set(f, files.filter((_, i) => i % SPLIT_EVERY !== SPLIT_EVERY - 1));
      val.set(f, files.filter((_, i) => i % SPLIT_EVERY === SPLIT_EVERY - 1));
    }
  }
  const classes: StudyClass[] = [];
  for (const c of IMAGENETTE) {
    const t = train.get(c.wnid) ?? [];
    const v = val.get(c.wnid) ?? [];
    if (!t.length || !v.length) {
      ignored.push(`${c.wnid} ${c.name}: ${!t.length && !v.length ? 'absent' : !t.length ? 'no training images' : 'no validation images'}`);
      continue;
    }
    if (limitClasses !== undefined && classes.length >= limitClasses) continue;
    classes.push({ ...c, train: t, val: v });
  }
  if (!classes.length) throw new RobustSynthError('ERR_BAD_INPUT', `${root} has no Imagenette class with both training and validation images (${ignored.join('; ')})`);
  return { root, layout, note, classes, ignored };
}

function ordinal(n: number): string {
  const s = n % 100 >= 11 && n % 100 <= 13 ? 'th' : ['th', 'st', 'nd', 'rd'][n % 10] ?? 'th';
  return `${n}${s}`;
}

/** Reads images at 224x224 (resized to cover, centre-cropped), skipping unreadable ones. */
export async function readImages(files: string[], want: number, onSkip?: (path: string, reason: string) => void): Promise<{ images: ImageBatch; files: string[] }> {
  const size = SIZE[0] * SIZE[1] * SIZE[2];
  // One buffer for all of them (a class's training images are ~600 MB at 224x224: no second copy).
  const data = new Float32Array(Math.min(want, files.length) * size);
  const used: string[] = [];
  for (const f of files) {
    if (used.length >= want) break;
    try {
      const im = await readImage(f, { channels: SIZE[0], height: SIZE[1], width: SIZE[2] });
      data.set(im.data, used.length * size);
      used.push(f);
    } catch (e) {
      onSkip?.(f, (e as Error).message);
    }
  }
  return { images: { data: data.subarray(0, used.length * size), shape: [used.length, ...SIZE] }, files: used };
}

/** sha256 of a list of files' names, sizes and modification times: what a cache depends on. */
export function filesDigest(root: string, files: string[]): string {
  const h = createHash('sha256');
  for (const f of files) {
    const st = statSync(f);
    h.update(`${relative(root, f)}\0${st.size}\0${Math.floor(st.mtimeMs)}\n`);
  }
  return h.digest('hex');
}

const trainFiles = (c: StudyClass, perClass: number | undefined) => (perClass === undefined ? c.train : c.train.slice(0, perClass));

/** What the seeds depend on: the training files (names, sizes, times), how many per class, the factor. */
export function seedsKey(data: ImagenetteFolder, perClass: number | undefined, factor: number) {
  return {
    version: 1,
    shape: SIZE,
    factor,
    perClass: perClass ?? 'all',
    classes: data.classes.map((c) => ({ wnid: c.wnid, files: trainFiles(c, perClass).length, digest: filesDigest(data.root, trainFiles(c, perClass)) })),
  };
}

export interface SeedsInfo {
  file: string;
  /** true when the cached file was reused. */
  cached: boolean;
  /** Training images per class the seeds were fitted on. */
  images: Record<string, number>;
  factor: number;
  sampler: string;
  seconds: number;
}

/**
 * The seed distributions of the study's classes, fitted on the training images (at most
 * `perClass` of each class) at 3x224x224 with the multivariate normal at `factor` (its
 * 9,408-dimensional low-resolution space uses the low-rank sampler), cached in `dir`: a rerun
 * with the same images and settings loads the file instead.
 */
export async function studySeeds(
  data: ImagenetteFolder,
  o: { dir: string; perClass?: number; factor: number; classNames: string[]; onLog?: (m: string) => void; signal?: AbortSignal },
): Promise<{ seeds: SeedModel; info: SeedsInfo }> {
  const t0 = performance.now();
  const file = join(o.dir, 'imagenette-224.seeds');
  const metaFile = join(o.dir, 'imagenette-224.json');
  const pick = (c: StudyClass) => trainFiles(c, o.perClass);
  const key = seedsKey(data, o.perClass, o.factor);
  if (existsSync(file) && existsSync(metaFile)) {
    try {
      const meta = JSON.parse(readFileSync(metaFile, 'utf8'));
      if (JSON.stringify(meta.key) === JSON.stringify(key)) {
        const seeds = loadSeeds(file);
        o.onLog?.(`seeds: reusing ${file} (fitted earlier on the same images)`);
        return { seeds, info: { ...meta.info, file, cached: true, seconds: round1((performance.now() - t0) / 1000) } };
      }
    } catch {
      // An unreadable cache is refitted.
    }
  }
  const parts: SeedModel[] = [];
  const images: Record<string, number> = {};
  for (const [k, c] of data.classes.entries()) {
    if (o.signal?.aborted) throw new RobustSynthError('ERR_ABORTED', 'the job was aborted');
    o.onLog?.(`seeds: reading the training images of ${c.name} (${k + 1}/${data.classes.length})`);
    const files = pick(c);
    const r = await readImages(files, files.length, (p, why) => o.onLog?.(`seeds: skipped ${p}: ${why}`));
    if (!r.files.length) throw new RobustSynthError('ERR_BAD_INPUT', `no readable training image for ${c.wnid} (${c.name})`);
    const ds: LabeledImages = { images: r.images, labels: new Int32Array(r.files.length).fill(c.index), classes: o.classNames, skipped: [] };
    parts.push(fitSeeds(ds, { factor: o.factor, source: data.root }));
    images[c.name] = r.files.length;
  }
  const seeds: SeedModel = { ...parts[0]!, classes: parts.flatMap((p) => p.classes) };
  saveSeeds(file, seeds);
  const first = seeds.classes[0]!;
  const info: SeedsInfo = {
    file,
    cached: false,
    images,
    factor: o.factor,
    sampler:
      first.factorKind === 'data'
        ? `low-rank: mu + D^T z / sqrt(n) + 0.01 w on ${first.lowMean.length} dimensions (${SIZE[1] / o.factor}x${SIZE[2] / o.factor}x${SIZE[0]})`
        : `Cholesky factor on ${first.lowMean.length} dimensions`,
    seconds: round1((performance.now() - t0) / 1000),
  };
  writeFileAtomic(metaFile, JSON.stringify({ key, info }, null, 2) + '\n');
  o.onLog?.(`seeds: fitted on ${Object.values(images).reduce((a, b) => a + b, 0)} training images in ${info.seconds} s -> ${file}`);
  return { seeds, info };
}

/** What the seed file in `dir` was fitted on (when this run reused it without fitting). */
export function readSeedsInfo(dir: string): SeedsInfo | undefined {
  try {
    const meta = JSON.parse(readFileSync(join(dir, 'imagenette-224.json'), 'utf8'));
    return { ...meta.info, file: join(dir, 'imagenette-224.seeds'), cached: true };
  } catch {
    return undefined;
  }
}

const round1 = (v: number) => Math.round(v * 10) / 10;
