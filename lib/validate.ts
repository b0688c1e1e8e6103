/**
 * Option checks at the public surface, in the manner of sharp's is.mjs: each failure names the
 * parameter, what was expected and what was received, and carries code ERR_BAD_INPUT.
 */
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
