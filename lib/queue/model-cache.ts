/** The models a worker has loaded, by name, checked against the hash each job names. */
import { Classifier, type Device } from '../classifier.js';
import { RobustSynthError } from '../errors.js';
import { resolveModel, sha256File } from '../models.js';
import type { JobData } from './jobs.js';

export interface LoadedModel {
  clf: Classifier;
  sha256: string;
}

/**
 * Loaded models by name, the most recent two (loading is slow; memory is not free). A load in
 * progress is shared by whoever asks for the same model. Only get(), called by the batch runner
 * one batch at a time, evicts (and so disposes of) a model: a preload never disposes of one a
 * running batch uses.
 */
export class ModelCache {
  #cache = new Map<string, Promise<LoadedModel>>();
  constructor(
    private readonly device: Device,
    private readonly modelDirs: string[],
    private readonly log: (line: string) => void,
  ) {}

  #load(name: string): Promise<LoadedModel> {
    const p = (async () => {
      // By name only, and only from the allow-list: the embedded models and --model-dir.
      const clf = await Classifier.load(name, { device: this.device, modelDirs: this.modelDirs, allowedDirs: this.modelDirs });
      this.log(`loaded ${name} (${clf.path}) on ${clf.device}`);
      return { clf, sha256: clf.card?.sha256 ?? (await sha256File(clf.path)) };
    })();
    this.#cache.set(name, p);
    p.catch(() => this.#cache.get(name) === p && this.#cache.delete(name)); // a failed load is tried again next time
    return p;
  }

  /** The hash of the file a name resolves to now (its card's, else the file's). */
  async #diskSha(name: string): Promise<string | undefined> {
    try {
      const { path, card } = resolveModel(name, this.modelDirs);
      return card?.sha256 ?? (await sha256File(path));
    } catch {
      return undefined;
    }
  }

  /** Starts loading a job's model if there is room, so that its batch keeps filling meanwhile. */
  async preload(d: JobData): Promise<void> {
    if (!this.#cache.has(d.model) && this.#cache.size < 2) await this.#load(d.model);
    else await this.#cache.get(d.model);
  }

  async get(d: JobData): Promise<Classifier> {
    let p = this.#cache.get(d.model);
    if (p) {
      this.#cache.delete(d.model);
      this.#cache.set(d.model, p);
    } else {
      while (this.#cache.size >= 2) {
        const [name, old] = this.#cache.entries().next().value as [string, Promise<LoadedModel>];
        this.#cache.delete(name);
        await old.then((m) => m.clf.dispose()).catch(() => {});
      }
      p = this.#load(d.model);
    }
    let m = await p;
    if (m.sha256 !== d.modelSha256 && (await this.#diskSha(d.model)) === d.modelSha256) {
      // The file was replaced since it was loaded (a re-export): load the new one.
      this.#cache.delete(d.model);
      await m.clf.dispose().catch(() => {});
      m = await this.#load(d.model);
    }
    if (m.sha256 !== d.modelSha256) {
      throw new RobustSynthError(
        'ERR_MODEL_LOAD',
        `this worker's ${d.model} (sha256 ${m.sha256.slice(0, 12)}...) is not the model the job was submitted for (${d.modelSha256.slice(0, 12)}...)`,
      );
    }
    const [c, h, w] = m.clf.inputShape;
    if (d.shape[0] !== c || d.shape[1] !== h || d.shape[2] !== w) {
      throw new RobustSynthError('ERR_BAD_INPUT', `the job is for ${d.shape.join('x')} inputs; ${d.model} takes ${c}x${h}x${w}`);
    }
    return m.clf;
  }

  async dispose(): Promise<void> {
    for (const p of this.#cache.values()) await p.then((m) => m.clf.dispose()).catch(() => {});
    this.#cache.clear();
  }
}
