/** The study's classifiers: resolved (and their files identified) up front, loaded only when a part needs them. */
import { basename } from 'node:path';
import { Classifier, type Device } from '../classifier.js';
import { RobustSynthError } from '../errors.js';
import { resolveModel, sha256File, type ModelCard } from '../models.js';
import { SIZE } from './data.js';

export type Role = 'robust' | 'standard' | 'judge';

export interface ModelIdentity {
  role: Role;
  name: string;
  path: string;
  sha256: string;
  /** From the model card, when there is one. */
  robust?: boolean;
  eps?: number;
  weights?: string;
  source?: string;
}

export class StudyModels {
  readonly #resolved = new Map<Role, { path: string; card?: ModelCard }>();
  readonly #loaded = new Map<Role, Promise<Classifier>>();
  readonly #ids = new Map<Role, ModelIdentity>();

  constructor(
    paths: Partial<Record<Role, string>>,
    readonly device: Device,
    readonly modelDirs: string[] = [],
  ) {
    for (const [role, p] of Object.entries(paths) as Array<[Role, string | undefined]>) {
      if (p === undefined) continue;
      const r = resolveModel(p, modelDirs);
      const shape = r.card?.inputShape;
      if (shape && (shape[0] !== SIZE[0] || shape[1] !== SIZE[1] || shape[2] !== SIZE[2])) {
        throw new RobustSynthError('ERR_BAD_INPUT', `--${role} ${p} takes ${shape.join('x')} images; the study runs at ${SIZE.join('x')} (an ImageNet ResNet50 exported by models/export_resnet50.py)`);
      }
      this.#resolved.set(role, r);
    }
  }

  has(role: Role): boolean {
    return this.#resolved.has(role);
  }

  /** Name, path, checksum and card facts of a model (the checksum from its card, else computed). */
  async identity(role: Role): Promise<ModelIdentity> {
    const cached = this.#ids.get(role);
    if (cached) return cached;
    const r = this.#resolved.get(role)!;
    const card = r.card;
    const id: ModelIdentity = {
      role,
      name: card?.name ?? basename(r.path, '.pt'),
      path: r.path,
      sha256: card?.sha256 ?? (await sha256File(r.path)),
      robust: card?.robust,
      eps: card?.eps,
      weights: typeof card?.weights === 'string' ? card.weights : undefined,
      source: typeof card?.source === 'string' ? card.source : undefined,
    };
    this.#ids.set(role, id);
    return id;
  }

  get(role: Role): Promise<Classifier> {
    let p = this.#loaded.get(role);
    if (!p) {
      const r = this.#resolved.get(role);
      if (!r) throw new RobustSynthError('ERR_INTERNAL', `no ${role} model`);
      p = Classifier.load(r.path, { device: this.device, modelDirs: this.modelDirs }).then((clf) => {
        const [c, h, w] = clf.inputShape;
        if (c !== SIZE[0] || h !== SIZE[1] || w !== SIZE[2]) {
          void clf.dispose();
          throw new RobustSynthError('ERR_BAD_INPUT', `${r.path} takes ${c}x${h}x${w} images; the study runs at ${SIZE.join('x')}`);
        }
        return clf;
      });
      this.#loaded.set(role, p);
    }
    return p;
  }

  async dispose(): Promise<void> {
    for (const p of this.#loaded.values()) {
      try {
        await (await p).dispose();
      } catch {
        // a model that failed to load has nothing to dispose
      }
    }
    this.#loaded.clear();
  }
}
