/** Finding models: the embedded ones by name, exported ones by path, with their sidecar cards. */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { packageRoot } from '../binding/index.js';
import { RobustSynthError } from './errors.js';

/** The sidecar JSON written next to every exported .pt (models/export_resnet50.py, models/train_fashion.py). */
export interface ModelCard {
  name: string;
  inputShape: [number, number, number];
  classes: string[];
  robust?: boolean;
  eps?: number;
  sha256?: string;
  role?: string;
  architecture?: string;
  dataset?: string;
  normalization?: { mean: number[]; std: number[]; inside: boolean };
  accuracy?: Record<string, number>;
  [key: string]: unknown;
}

export interface ResolvedModel {
  path: string;
  card?: ModelCard;
}

export const EMBEDDED_MODELS = ['fashion-robust', 'fashion-standard', 'fashion-judge'] as const;

export function modelsDir(): string {
  return join(packageRoot(), 'models');
}

export function readCard(ptPath: string): ModelCard | undefined {
  const json = ptPath.replace(/\.pt$/, '') + '.json';
  if (!existsSync(json)) return undefined;
  try {
    return JSON.parse(readFileSync(json, 'utf8')) as ModelCard;
  } catch (e) {
    throw new RobustSynthError('ERR_MODEL_LOAD', `the model card ${json} is not valid JSON: ${(e as Error).message}`);
  }
}

/** A name ('fashion-robust') or a path ('./resnet50-robust.pt'). Names are looked up in the package's models/ and in `dirs`. */
export function resolveModel(nameOrPath: string, dirs: string[] = []): ResolvedModel {
  const looksLikePath = nameOrPath.includes('/') || nameOrPath.endsWith('.pt');
  const candidates = looksLikePath
    ? [resolve(nameOrPath)]
    : [...dirs, modelsDir()].map((d) => join(d, `${nameOrPath}.pt`));
  for (const path of candidates) {
    if (existsSync(path)) {
      if (statSync(path).isDirectory()) {
        throw new RobustSynthError('ERR_MODEL_LOAD', `${path} is a directory, not a TorchScript file`);
      }
      return { path, card: readCard(path) };
    }
  }
  throw new RobustSynthError(
    'ERR_MODEL_NOT_FOUND',
    looksLikePath
      ? `model file not found: ${candidates[0]} (robust-synth models lists the models found by name)`
      : `no model named '${nameOrPath}' (looked in ${candidates.join(', ')}); known names: ${listModels(dirs)
          .map((m) => m.name)
          .join(', ')} (robust-synth models lists them with their cards)`,
  );
}

/** Every model with a card in the package's models/ and in `dirs`. */
export function listModels(dirs: string[] = []): Array<ModelCard & { path: string }> {
  const out: Array<ModelCard & { path: string }> = [];
  for (const d of [modelsDir(), ...dirs]) {
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d).sort()) {
      if (!f.endsWith('.pt')) continue;
      const path = join(d, f);
      const card = readCard(path);
      out.push({ ...(card ?? { name: basename(f, '.pt'), inputShape: [3, 224, 224], classes: [] }), path });
    }
  }
  return out;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}
