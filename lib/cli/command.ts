/**
 * What every command shares: its option table (flags, value placeholders, one-line
 * descriptions), parsing, `--help`, and one error style. An invalid option is an ERR_BAD_INPUT
 * (exit code 2) whose message names the flag: `--count must be an integer >= 1, got -1`.
 */
import { existsSync, statSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { RobustSynthError } from '../errors.js';
import { invalidParts } from '../validate.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  multiple?: boolean;
  default?: string | boolean;
  /** The value's placeholder in the help (N, DIR, NAME|PATH). */
  value?: string;
  /** One line for the help. */
  description: string;
  /** The library parameters this flag feeds (default: the flag and its camelCase); their errors are restated with the flag. */
  params?: string[];
  /** A deprecated other name of the flag `aliasOf`: accepted, its values read as that flag's, and marked so in the help. */
  aliasOf?: string;
}

export type OptionSpecs = Record<string, OptionSpec>;
export type Values = Record<string, string | boolean | string[] | undefined>;

export interface Command {
  /** The command, the kebab-case of the library function it runs (super-resolve for superResolve). */
  name: string;
  /** The synopsis after `robust-synth NAME`. */
  usage: string;
  options: OptionSpecs;
  /** A command that parses its own arguments and prints its own help (setup, build). */
  raw?: boolean;
  /** Resolves with the exit code. `argv` is the command's arguments, negative values joined to their flag. */
  run(values: Values, argv: string[]): Promise<number> | number;
}

const HELP: OptionSpec = { type: 'boolean', description: 'print this help and exit' };

function bad(message: string, cause?: unknown): RobustSynthError {
  return new RobustSynthError('ERR_BAD_INPUT', message, cause === undefined ? undefined : { cause });
}

/** `robust-synth NAME --help`: the synopsis, then every flag with its line. */
export function helpText(cmd: Command, summary: string): string {
  const rows: Array<readonly [string, string]> = Object.entries(cmd.options).map(([name, o]) => {
    const def = o.default !== undefined && o.default !== false ? ` (default: ${String(o.default)})` : '';
    if (o.aliasOf) return [`--${name}${o.value ? ` ${o.value}` : ''}`, `deprecated: the old name of --${o.aliasOf}`] as const;
    return [`--${name}${o.value ? ` ${o.value}` : ''}`, `${o.description}${o.multiple ? '; repeatable' : ''}${def}`] as const;
  });
  rows.push(['-h, --help', HELP.description]);
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  return `robust-synth ${cmd.name}: ${summary}\n\nUsage: robust-synth ${cmd.name} ${cmd.usage}\n\nOptions:\n${rows.map(([f, d]) => `  ${f.padEnd(width)}${d}`).join('\n')}`;
}

const NUMBER_LIKE = /^-(\d|\.\d|infinity$)/i;

/**
 * Joins a value that starts with a dash to its flag (`--eps -1` -> `--eps=-1`) when the flag
 * takes a value and the value reads as a number: node's parser would otherwise refuse it as
 * ambiguous, and a negative number must reach validation to be refused with its reason.
 */
export function joinNegativeValues(argv: string[], options: OptionSpecs): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    if (a.startsWith('--') && !a.includes('=') && options[a.slice(2)]?.type === 'string' && next !== undefined && NUMBER_LIKE.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** Node's argument parser's errors, restated in the command's terms. */
function parseError(e: unknown, cmd: Command): unknown {
  const err = e as { code?: string; message?: string };
  if (typeof err?.code !== 'string' || !err.code.startsWith('ERR_PARSE_ARGS')) return e;
  const message = err.message ?? '';
  const flag = /(?:option|Option) '(-[^' ]+)/.exec(message)?.[1];
  const help = `robust-synth ${cmd.name} --help lists the options`;
  if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag) return bad(`${flag} is not an option of robust-synth ${cmd.name}; ${help}`, e);
  if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && flag) {
    if (/does not take an argument/.test(message)) return bad(`${flag} takes no value`, e);
    if (/ambiguous/.test(message)) return bad(`${flag} needs a value; for a value that starts with a dash, write ${flag}=VALUE`, e);
    return bad(`${flag} needs a value`, e);
  }
  if (err.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    const arg = /argument '([^']*)'/.exec(message)?.[1];
    return bad(`unexpected argument${arg === undefined ? '' : ` '${arg}'`}: robust-synth ${cmd.name} takes options only; ${help}`, e);
  }
  return bad(message.replace(/\s*\n\s*/g, ' '), e);
}

/** Parses a command's arguments; 'help' when --help or -h is among them. */
export function parseCommand(cmd: Command, argv: string[]): { values: Values; argv: string[] } | 'help' {
  if (argv.includes('--help') || argv.includes('-h')) return 'help';
  const args = joinNegativeValues(argv, cmd.options);
  const options: NonNullable<ParseArgsConfig['options']> = Object.fromEntries(
    Object.entries(cmd.options).map(([name, o]) => [name, { type: o.type, ...(o.multiple ? { multiple: true } : {}), ...(o.default !== undefined ? { default: o.default } : {}) }]),
  );
  let values: Values;
  try {
    values = parseArgs({ args, options, strict: true, allowPositionals: false }).values as Values;
  } catch (e) {
    throw parseError(e, cmd);
  }
  return { values: mergeAliases(cmd.options, values), argv: args };
}

/** Deprecated flag names folded into their flag: `--models DIR` reads as `--model-dir DIR`. */
function mergeAliases(specs: OptionSpecs, values: Values): Values {
  for (const [name, o] of Object.entries(specs)) {
    if (!o.aliasOf || values[name] === undefined) continue;
    const v = values[name];
    const to = values[o.aliasOf];
    if (specs[o.aliasOf]?.multiple) values[o.aliasOf] = [...((to as string[] | undefined) ?? []), ...(Array.isArray(v) ? v : [String(v)])];
    else if (to === undefined || to === specs[o.aliasOf]?.default) values[o.aliasOf] = v;
    else throw bad(`--${name} is the old name of --${o.aliasOf}: give one of them`);
    delete values[name];
  }
  return values;
}

const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

/** The flag a library parameter came from: `--eps` for eps, `--hole's width` for hole.width. */
export function flagFor(cmd: Command, param: string): string | undefined {
  const find = (p: string) => Object.entries(cmd.options).find(([name, o]) => (o.params ?? [name, camel(name)]).includes(p))?.[0];
  const whole = param.replace(/\[\d+\]$/, '');
  const exact = find(whole);
  if (exact) return `--${exact}`;
  const dot = whole.indexOf('.');
  const parent = dot > 0 ? find(whole.slice(0, dot)) : undefined;
  return parent ? `--${parent}'s ${whole.slice(dot + 1)}` : undefined;
}

function withArticle(expected: string): string {
  if (/^(a|an|one of|the) /.test(expected) || !/^[a-z]/i.test(expected)) return expected;
  return `${/^[aeiou]/i.test(expected) ? 'an' : 'a'} ${expected}`;
}

/**
 * A library error about a parameter, restated with the flag that gave it:
 * "Expected integer >= 1 for count but received -1 of type number" -> "--count must be an integer >= 1, got -1".
 */
export function restate(e: unknown, cmd: Command): unknown {
  const parts = invalidParts(e);
  if (parts) {
    const flag = flagFor(cmd, parts.name);
    if (flag) return bad(`${flag} must be ${withArticle(parts.expected)}, got ${parts.received}`, e);
    return e;
  }
  if (e instanceof RobustSynthError && e.code === 'ERR_BAD_INPUT') {
    const m = /^Unknown class '(.*)' for (\S+); (.+?) knows: (.*)$/s.exec(e.message);
    const flag = m && flagFor(cmd, m[2]!);
    if (m && flag) return bad(`${flag} must be a class of ${m[3]} (a name or an index), got '${m[1]}'; it knows: ${m[4]}`, e);
  }
  return e;
}

/** A flag's number, or undefined when absent. Range checks are the library's (restated with the flag). */
export function numberFlag(values: Values, key: string): number | undefined {
  const s = values[key];
  if (s === undefined) return undefined;
  const n = typeof s === 'string' && s.trim() !== '' ? Number(s) : NaN;
  if (Number.isNaN(n)) throw bad(`--${key} must be a number, got '${String(s)}'`);
  return n;
}

/** An output directory: refused, before any work, when it exists and is not a directory. */
export function checkOutDir(path: string, flag = '--out'): string {
  if (existsSync(path) && !statSync(path).isDirectory()) throw bad(`${flag} must be a directory, got ${path}, which exists and is not a directory`);
  return path;
}

/** An output file: refused, before any work, when it is a directory. */
export function checkOutFile(path: string, flag = '--out'): string {
  if (existsSync(path) && statSync(path).isDirectory()) throw bad(`${flag} must be a file path, got ${path}, which is a directory`);
  return path;
}

/** --input-shape C,H,W (a model without a card), or undefined when absent. */
export function inputShapeFlag(values: Values, key = 'input-shape'): [number, number, number] | undefined {
  const shape = values[key];
  if (shape === undefined) return undefined;
  const parts = String(shape).split(',').map((s) => (s.trim() === '' ? NaN : Number(s)));
  if (parts.length !== 3 || !parts.every((n) => Number.isInteger(n) && n >= 1)) {
    throw bad(`--${key} must be C,H,W (three integers >= 1), got '${String(shape)}'`);
  }
  return parts as [number, number, number];
}

/** "1 image", "3 images". */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** A required flag's value. */
export function required(values: Values, key: string, what: string): string {
  const v = values[key];
  if (v === undefined || (Array.isArray(v) && v.length === 0) || v === '') throw bad(`--${key} is required (${what})`);
  return Array.isArray(v) ? v[0]! : String(v);
}

/** Parses and runs a command, restating library errors about its options with their flags. */
export async function runCommand(cmd: Command, summary: string, argv: string[]): Promise<number> {
  if (cmd.raw) return cmd.run({}, argv);
  const parsed = parseCommand(cmd, argv);
  if (parsed === 'help') {
    console.log(helpText(cmd, summary));
    return 0;
  }
  try {
    return await cmd.run(parsed.values, parsed.argv);
  } catch (e) {
    throw restate(e, cmd);
  }
}

/** Resolves at the first SIGINT or SIGTERM: long-running commands (serve, worker) then shut down cleanly. */
export function untilStopped(): Promise<void> {
  return new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
