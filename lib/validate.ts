/**
 * Option checks at the public surface, in the manner of sharp's is.mjs: each failure names the
 * parameter, what was expected and what was received, and carries code ERR_BAD_INPUT.
 */
import { totalmem } from 'node:os';
import { RobustSynthError } from './errors.js';

function describe(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return `${String(v)} of type ${typeof v}`;
  if (typeof v === 'string') return `'${v.length > 40 ? v.slice(0, 40) + '...' : v}' of type string`;
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  return `${typeof v === 'object' ? 'an object' : typeof v}`;
}

export function invalid(name: string, expected: string, received: unknown): RobustSynthError {
  return new RobustSynthError('ERR_BAD_INPUT', `Expected ${expected} for ${name} but received ${describe(received)}`);
}

const INVALID = /^Expected (.+) for (\S+) but received (.+)$/s;

/**
 * The parts of an {@link invalid} message: the parameter, what was expected, and what was
 * received (without its "of type" suffix), so that a caller such as the CLI can restate the
 * error in its own terms (its flag in place of the parameter). Undefined for any other error.
 */
export function invalidParts(e: unknown): { name: string; expected: string; received: string } | undefined {
  if (!(e instanceof RobustSynthError) || e.code !== 'ERR_BAD_INPUT') return undefined;
  const m = INVALID.exec(e.message);
  if (!m) return undefined;
  return { name: m[2]!, expected: m[1]!, received: m[3]!.replace(/ of type (number|string|boolean|bigint)$/, '') };
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function finiteNumber(name: string, v: unknown, { min = -Infinity, max = Infinity, minExclusive = false } = {}): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (minExclusive && v === min)) {
    const range = min === -Infinity && max === Infinity ? '' : ` ${minExclusive ? '>' : '>='} ${min}${max !== Infinity ? ` and <= ${max}` : ''}`;
    throw invalid(name, `finite number${range}`, v);
  }
  return v;
}

export function integer(name: string, v: unknown, { min = -Infinity, max = Infinity } = {}): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = `${min !== -Infinity ? ` >= ${min}` : ''}${max !== Infinity ? ` and <= ${max}` : ''}`;
    throw invalid(name, `integer${range}`, v);
  }
  return v;
}

/**
 * A class name (any case) or index ("7" too) of `model`, as an index in range; an unknown name
 * is an ERR_BAD_INPUT that lists the model's classes. `name`: the parameter, for the message.
 */
export function classIndex(model: { name: string; classes: readonly string[]; numClasses?: number }, ref: unknown, name = 'class'): number {
  if (typeof ref === 'string') {
    const i = model.classes.findIndex((c) => c.toLowerCase() === ref.toLowerCase());
    if (i >= 0) return i;
    if (/^\d+$/.test(ref)) return classIndex(model, Number(ref), name);
    throw new RobustSynthError('ERR_BAD_INPUT', `Unknown class '${ref}' for ${name}; ${model.name} knows: ${model.classes.join(', ')}`);
  }
  const count = model.numClasses ?? model.classes.length;
  return integer(name, ref, { min: 0, max: count ? count - 1 : 1e6 });
}

export function boolean(name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw invalid(name, 'boolean', v);
  return v;
}

export function oneOf<T extends string>(name: string, v: unknown, values: readonly T[]): T {
  if (typeof v !== 'string' || !values.includes(v as T)) throw invalid(name, `one of ${values.map((x) => `'${x}'`).join(', ')}`, v);
  return v as T;
}

export function nonEmptyString(name: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw invalid(name, 'non-empty string', v);
  return v;
}

export function func(name: string, v: unknown): (...args: never[]) => unknown {
  if (typeof v !== 'function') throw invalid(name, 'function', v);
  return v as (...args: never[]) => unknown;
}

/** Options objects: reject unknown keys, since a typo silently ignored costs a whole run. */
export function knownKeys(name: string, o: Record<string, unknown>, keys: readonly string[]): void {
  for (const k of Object.keys(o)) {
    if (!keys.includes(k) && o[k] !== undefined) {
      throw new RobustSynthError('ERR_BAD_INPUT', `Unknown option '${k}' in ${name}; known options: ${keys.join(', ')}`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Memory: refuse, up front, a job whose size alone would exhaust the machine

let memoryLimitOverride: number | undefined;

/** Sets the limit checkMemory() applies, in bytes; undefined restores the default. */
export function setMemoryLimit(bytes: number | undefined): void {
  memoryLimitOverride = bytes === undefined ? undefined : finiteNumber('memory limit', bytes, { min: 0 });
}

/** The limit: 80 % of this machine's memory, or of the cgroup limit where one is set. */
export function memoryLimit(): number {
  if (memoryLimitOverride !== undefined) return memoryLimitOverride;
  const total = totalmem();
  const constrained = process.constrainedMemory?.() ?? 0;
  return Math.floor(0.8 * (constrained > 0 && constrained < total ? constrained : total));
}

function gb(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

/**
 * Throws ERR_OUT_OF_MEMORY when `bytes`, the estimated need of `what`, exceeds memoryLimit().
 * The estimate counts the tensors the engine keeps, not the model's activations, so passing
 * this check does not guarantee the job fits; failing it means it surely does not.
 */
export function checkMemory(what: string, bytes: number): void {
  const limit = memoryLimit();
  if (bytes > limit) {
    throw new RobustSynthError(
      'ERR_OUT_OF_MEMORY',
      `${what} needs about ${gb(bytes)}, over the limit of ${gb(limit)}` +
        `${memoryLimitOverride === undefined ? ' (80 % of this machine\'s memory)' : ' (set with setMemoryLimit)'}; ` +
        'split it into smaller batches, or raise the limit with setMemoryLimit()',
    );
  }
}
