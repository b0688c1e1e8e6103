/** Class-conditional generation: PGD toward class k from a seed of class k. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ClassRef } from '../classifier.js';
import { RobustSynthError } from '../errors.js';
import { modelsDir } from '../models.js';
import { loadSeeds, sampleSeeds, SEED_KINDS, type SeedKind, type SeedModel } from '../seeds.js';
import { concat } from '../tensor.js';
import * as is from '../validate.js';
import { checkClassifier, classList, COMMON_KEYS, resolveSettings, runBatched, type CommonTaskOptions, type TaskResult } from './common.js';

export interface GenerateOptions extends CommonTaskOptions {
  /** Classes to generate (names or indices). */
  classes: ClassRef | ClassRef[];
  /** Images per class (default 1). */
  count?: number;
  /** Seed distribution (default 'mvn'). */
  seed?: SeedKind;
  /** Fitted seed statistics, or the path of a seed file; the embedded models find theirs. */
  seeds?: SeedModel | string;
  /** Random seed of the sampler (default 0). */
  randomSeed?: number;
}

const cache = new Map<string, SeedModel>();

/** The seed file that ships for a model's data set, if any (models/<dataset>.seeds). */
export function defaultSeedsFor(dataset: string | undefined): SeedModel | undefined {
  if (!dataset) return undefined;
  const path = join(modelsDir(), `${dataset}.seeds`);
  if (!existsSync(path)) return undefined;
  if (!cache.has(path)) cache.set(path, loadSeeds(path));
  return cache.get(path);
}

/**
 * @example
 * const clf = await Classifier.load('fashion-robust');
 * const r = await generate({ classifier: clf, classes: ['Sneaker', 'Bag'], count: 4, seed: 'mvn' });
 */
export async function generate(options: GenerateOptions): Promise<TaskResult> {
  if (!is.isObject(options)) throw is.invalid('options', 'object', options);
  is.knownKeys('generate options', options, [...COMMON_KEYS, 'classes', 'count', 'seed', 'seeds', 'randomSeed']);
  const clf = checkClassifier(options);
  const kind = is.oneOf('seed', options.seed ?? 'mvn', SEED_KINDS);
  const count = is.integer('count', options.count ?? 1, { min: 1, max: 100_000 });
  const randomSeed = is.integer('randomSeed', options.randomSeed ?? 0, { min: 0, max: 2 ** 31 });
  const classes = Array.from(new Set(classList(clf, 'classes', options.classes, Array.isArray(options.classes) ? options.classes.length : 1)));
  let seeds: SeedModel | undefined;
  if (kind !== 'uniform') {
    seeds = typeof options.seeds === 'string' ? loadSeeds(options.seeds) : options.seeds ?? defaultSeedsFor(clf.card?.dataset);
    if (!seeds) {
      throw new RobustSynthError(
        'ERR_BAD_INPUT',
        `seed '${kind}' needs fitted seed statistics for ${clf.name}: make a seed file with \`robust-synth fit-seeds --data DIR --out FILE\`, ` +
          "then pass it as the generate() option `seeds: FILE` (CLI: `--seeds FILE`), or use seed 'uniform' (CLI: `--seed uniform`)",
      );
    }
    const [c, h, w] = clf.inputShape;
    if (seeds.shape[0] !== c || seeds.shape[1] !== h || seeds.shape[2] !== w) {
      throw new RobustSynthError('ERR_BAD_INPUT', `the seed file is for ${seeds.shape.join('x')} images, the model takes ${c}x${h}x${w}`);
    }
  }
  const settings = resolveSettings('generate', options);
  // Seed i of a class depends only on (class, randomSeed, i) (lib/seeds.ts): a queue job of
  // seeds start..end-1 draws exactly these rows, at the cost of end - start seeds.
  const x0 = concat(classes.map((k) => sampleSeeds(seeds, kind, k, count, randomSeed, clf.inputShape)));
  const targets = Int32Array.from(classes.flatMap((k) => Array<number>(count).fill(k)));
  return runBatched('generate', { ...options, classifier: clf }, settings, x0, targets);
}
