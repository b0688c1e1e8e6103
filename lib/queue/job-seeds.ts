/**
 * The start rows of a generate job: seeds start..end-1 of its class, drawn on their own (every
 * seed index has its own random stream, lib/seeds.ts), so that a job costs the same wherever its
 * range lies and its rows are those of a single-machine `generate` at the same indices.
 */
import { sampleSeeds, type SeedModel } from '../seeds.js';
import type { ImageBatch } from '../tensor.js';
import type { GenerateJobData } from './jobs.js';

/** Rows start..end-1 of class `target` (the class index the model resolved). */
export function jobSeeds(d: GenerateJobData, target: number, seeds: SeedModel | undefined): ImageBatch {
  return sampleSeeds(seeds, d.seed, target, d.end - d.start, d.randomSeed, d.shape, d.start);
}
