/**
 * The study's sizes: the full run (the reference settings at 224x224, REFERENCE_224) and
 * `--quick` (5 minutes on an idle 2-core CPU with native bf16, 8-9 in fp32: docs/study.md), plus the testing overrides that shrink either.
 */
import { RobustSynthError } from '../errors.js';
import { REFERENCE_224, type TaskSettings } from '../tasks/common.js';
import * as is from '../validate.js';

/** The four tasks of the study. */
export type StudyTask = 'generate' | 'inpaint' | 'superResolve' | 'translate';
export const STUDY_TASKS: readonly StudyTask[] = ['generate', 'inpaint', 'superResolve', 'translate'];

/** The reference settings at 224x224 (REFERENCE_224) of the study's tasks. */
export function studyReference(): Record<StudyTask, TaskSettings> {
  return Object.fromEntries(STUDY_TASKS.map((t) => [t, { ...REFERENCE_224[t] }])) as Record<StudyTask, TaskSettings>;
}

export interface StudyConfig {
  /** Generated images per class, per seed kind and per classifier. */
  generatePerClass: number;
  /** Validation images per class that are inpainted and super-resolved. */
  restorePerClass: number;
  /** Validation images per class that are translated. */
  translatePerClass: number;
  /** Translate each source to the next class only, or to every other class. */
  translateTo: 'next' | 'all';
  /** The settings each task runs with. */
  settings: Record<StudyTask, TaskSettings>;
  /** Training images per class the seeds are fitted on (undefined: all of them). */
  seedImagesPerClass: number | undefined;
  /** Block-averaging factor of the multivariate-normal seeds (4 at 224x224, as the study). */
  seedFactor: number;
  /** Reduction factor of super-resolution (8, as the study). */
  srFactor: number;
  /** Seed of the seed sampler. */
  randomSeed: number;
  /** What differs from the reference, in words (empty for the full run). */
  reductions: string[];
}

const TASKS = STUDY_TASKS;

/**
 * The reference settings with fewer iterations: the step grows so that iterations x step, the
 * longest path PGD can take, stays the reference's; eps is unchanged.
 */
export function reducedSettings(task: StudyTask, iterations: number): TaskSettings {
  const ref = REFERENCE_224[task];
  if (iterations >= ref.iterations) return { ...ref };
  return { ...ref, iterations, step: round((ref.step * ref.iterations) / iterations) };
}

const round = (v: number) => Math.round(v * 1e6) / 1e6;

/** The whole study with the reference settings (hours on a CPU; minutes on a GPU). */
export const FULL: StudyConfig = {
  generatePerClass: 8,
  restorePerClass: 4,
  translatePerClass: 1,
  translateTo: 'all',
  settings: studyReference(),
  seedImagesPerClass: undefined,
  seedFactor: 4,
  srFactor: 8,
  randomSeed: 1,
  reductions: [],
};

/**
 * `--quick`: sized to about 10 minutes on a 2-core CPU at 224x224. A ResNet50 PGD step takes
 * about 105 ms per image there (batch 1; bench/README.md), so the budget is about 4,000
 * image-steps (7 minutes) plus loading, judging and the seed fit.
 */
export const QUICK_ITERATIONS: Record<StudyTask, number> = { generate: 20, inpaint: 60, superResolve: 20, translate: 40 };
export const QUICK: StudyConfig = {
  generatePerClass: 2,
  restorePerClass: 1,
  translatePerClass: 1,
  translateTo: 'next',
  settings: Object.fromEntries(TASKS.map((t) => [t, reducedSettings(t, QUICK_ITERATIONS[t])])) as Record<StudyTask, TaskSettings>,
  seedImagesPerClass: 100,
  seedFactor: 4,
  srFactor: 8,
  randomSeed: 1,
  reductions: [],
};

export interface ConfigOverrides {
  quick?: boolean;
  /** Every task's iterations (the step scaled as in reducedSettings). */
  iterations?: number;
  /** Every per-class count (generation, restoration, translation). */
  perClass?: number;
  /** Training images per class for the seeds. */
  seedImages?: number;
}

/** The configuration of a run, with every reduction from the reference stated. */
export function studyConfig(o: ConfigOverrides = {}): StudyConfig {
  const base = o.quick ? QUICK : FULL;
  const cfg: StudyConfig = { ...base, settings: { ...base.settings }, reductions: [] };
  if (o.iterations !== undefined) {
    const n = is.integer('iterations', o.iterations, { min: 1, max: 100_000 });
    for (const t of TASKS) cfg.settings[t] = reducedSettings(t, n);
  }
  if (o.perClass !== undefined) {
    const n = is.integer('perClass', o.perClass, { min: 1, max: 10_000 });
    cfg.generatePerClass = cfg.restorePerClass = cfg.translatePerClass = n;
  }
  if (o.seedImages !== undefined) cfg.seedImagesPerClass = is.integer('seedImages', o.seedImages, { min: 1, max: 1_000_000 });
  for (const t of TASKS) {
    const s = cfg.settings[t];
    const ref = REFERENCE_224[t];
    if (s.iterations !== ref.iterations) {
      cfg.reductions.push(`${t}: ${s.iterations} iterations of step ${s.step} (reference: ${ref.iterations} of ${ref.step}; same eps ${s.eps}, same longest path)`);
    }
  }
  if (cfg.generatePerClass !== FULL.generatePerClass || cfg.restorePerClass !== FULL.restorePerClass || cfg.translatePerClass !== FULL.translatePerClass) {
    cfg.reductions.push(
      `images per class: ${cfg.generatePerClass} generated per seed and model, ${cfg.restorePerClass} inpainted and super-resolved, ${cfg.translatePerClass} translated ` +
        `(full run: ${FULL.generatePerClass}, ${FULL.restorePerClass}, ${FULL.translatePerClass})`,
    );
  }
  if (cfg.translateTo !== FULL.translateTo) cfg.reductions.push('translation: each source to the next class only (full run: to every other class)');
  if (cfg.seedImagesPerClass !== undefined) cfg.reductions.push(`seeds fitted on the first ${cfg.seedImagesPerClass} training images of each class (full run: all of them)`);
  if (!Number.isInteger(cfg.seedFactor) || 224 % cfg.seedFactor) throw new RobustSynthError('ERR_INTERNAL', 'seed factor must divide 224');
  return cfg;
}
