/**
 * Which model files may be loaded. Loading a TorchScript file runs its graph, so a model is
 * code: see docs/security.md. A model path that comes from outside the program (a web request,
 * a queue message, an editable config) must pass an allow-list first.
 */
import { realpathSync } from 'node:fs';
import { isAbsolute, relative, sep } from 'node:path';
import { RobustSynthError } from './errors.js';

/** Whether `file` lies strictly inside `dir` (both already resolved). */
function inside(dir: string, file: string): boolean {
  const rel = relative(dir, file);
  return rel !== '' && !isAbsolute(rel) && rel.split(sep)[0] !== '..';
}

/**
 * Resolves `path` (symlinks included) and throws ERR_MODEL_NOT_ALLOWED unless it lies inside
 * one of `allowedDirs` (also resolved); returns the resolved path, which is what should be
 * loaded. A missing file is ERR_MODEL_NOT_FOUND.
 *
 * @example
 * const file = assertAllowedModelPath(req.query.model, ['/srv/models']);
 * const clf = await Classifier.load(file);
 */
export function assertAllowedModelPath(path: string, allowedDirs: readonly string[]): string {
  if (!Array.isArray(allowedDirs) || allowedDirs.length === 0 || !allowedDirs.every((d) => typeof d === 'string' && d !== '')) {
    throw new RobustSynthError('ERR_BAD_INPUT', 'allowedDirs must list at least one directory');
  }
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    throw new RobustSynthError('ERR_MODEL_NOT_FOUND', `model file not found: ${path}`);
  }
  for (const d of allowedDirs) {
    let dir: string;
    try {
      dir = realpathSync(d);
    } catch {
      continue; // a listed directory that does not exist allows nothing
    }
    if (inside(dir, real)) return real;
  }
  throw new RobustSynthError(
    'ERR_MODEL_NOT_ALLOWED',
    `${path} is not inside an allowed model directory (${allowedDirs.join(', ')}); ` +
      'loading a model runs its code, so only files from the configured directories are loaded',
  );
}
