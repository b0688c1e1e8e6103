// Every error the library throws is a RobustSynthError with a stable code: no plain Error or
// TypeError is constructed in lib/, no other error class is declared there, and the README lists
// exactly the codes lib/errors.ts defines (the native addon's codes among them).
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isRobustSynthError, RobustSynthError } from '../lib/errors.js';

const ROOT = join(import.meta.dirname, '..');

/** Every TypeScript source under lib/ (the browser page's JavaScript is not the library). */
function sources(): string[] {
  return readdirSync(join(ROOT, 'lib'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))
    .map((f) => join(ROOT, 'lib', f))
    .sort();
}

interface Hit {
  file: string;
  line: number;
  text: string;
}

/**
 * Constructions allowed, each with its reason. Keyed by file and a piece of the line, so that a
 * new plain Error next to an allowed one still fails.
 */
const ALLOWED: Array<{ file: string; match: RegExp; why: string }> = [
  {
    file: 'lib/queue/plan.ts',
    match: /throw new Error\(`larger than \$\{max\} bytes`\)/,
    why: 'caught three lines below: its message becomes the reason a source file is skipped; it never leaves the function',
  },
  {
    file: 'lib/queue/worker.ts',
    match: /throw new Error\(failureMessage\(e\)\)/,
    why: "BullMQ's signal to retry a job: BullMQ stores only the message in Redis, and the submitter sees it as the job's failure text, never as a thrown object",
  },
];

/** `new Error()` with no message, not thrown: a call-site capture whose stack fromNative() puts on the RobustSynthError it throws. */
const isCallSiteCapture = (text: string) => /\bnew Error\(\)/.test(text) && !/\bthrow\b/.test(text) && !/new (Type)?Error\([^)]/.test(text);

function scan(): { constructed: Hit[]; classes: Hit[] } {
  const constructed: Hit[] = [];
  const classes: Hit[] = [];
  for (const path of sources()) {
    const file = relative(ROOT, path).split('\\').join('/');
    const lines = readFileSync(path, 'utf8').split('\n');
    lines.forEach((text, i) => {
      const code = text.replace(/\/\/.*$/, '').replace(/^\s*\*.*$/, ''); // not in comments
      if (/\bnew (Type|Range|Syntax)?Error\(/.test(code) && !isCallSiteCapture(code) && !ALLOWED.some((a) => a.file === file && a.match.test(code))) {
        constructed.push({ file, line: i + 1, text: text.trim() });
      }
      const m = /\bclass (\w+) extends (\w*Error)\b/.exec(code);
      if (m && m[1] !== 'RobustSynthError') classes.push({ file, line: i + 1, text: text.trim() });
    });
  }
  return { constructed, classes };
}

const show = (hits: Hit[]) => hits.map((h) => `${h.file}:${h.line}: ${h.text}`).join('\n');

/** The codes of the ErrorCode union in lib/errors.ts. */
function definedCodes(): string[] {
  const src = readFileSync(join(ROOT, 'lib/errors.ts'), 'utf8');
  const union = /export type ErrorCode =([^;]+);/.exec(src)![1]!;
  return [...union.matchAll(/'(ERR_[A-Z_]+)'/g)].map((m) => m[1]!).sort();
}

describe('errors', () => {
  it('lib/ constructs no plain Error or TypeError (only RobustSynthError with a code)', () => {
    const { constructed } = scan();
    expect(show(constructed), 'throw a RobustSynthError with a code from lib/errors.ts instead').toBe('');
  });

  it('lib/ declares no error class besides RobustSynthError', () => {
    expect(show(scan().classes), 'use RobustSynthError with a code instead of a class of its own').toBe('');
  });

  it('the scan finds what it looks for (a plain Error, a TypeError, a class), and lets a call-site capture pass', () => {
    expect(isCallSiteCapture('    const callSite = new Error();')).toBe(true);
    expect(isCallSiteCapture('    if (x) throw new Error();')).toBe(false);
    expect(isCallSiteCapture("    req.destroy(new Error('stalled'));")).toBe(false);
    expect(sources().length).toBeGreaterThan(50);
    expect(sources()).toContain(join(ROOT, 'lib/errors.ts'));
    // lib/errors.ts itself declares RobustSynthError, which the class check must not flag.
    expect(readFileSync(join(ROOT, 'lib/errors.ts'), 'utf8')).toMatch(/class RobustSynthError extends Error/);
  });

  it("the README's code list is exactly the codes lib/errors.ts defines", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const para = /Every failure is a `RobustSynthError` with a stable `code`:([\s\S]*?)\.\n/.exec(readme);
    expect(para, 'the README states the error codes').not.toBeNull();
    const listed = [...para![1]!.matchAll(/`(ERR_[A-Z_]+)`/g)].map((m) => m[1]!).sort();
    expect(listed).toEqual(definedCodes());
    expect(new Set(listed).size).toBe(listed.length);
  });

  it("the native addon's codes are among them", () => {
    const header = readFileSync(join(ROOT, 'native/src/common.h'), 'utf8');
    const native = [...header.matchAll(/"(ERR_[A-Z_]+)"/g)].map((m) => m[1]!);
    expect(native.length).toBeGreaterThan(5);
    for (const c of native) expect(definedCodes(), c).toContain(c);
  });

  it('a RobustSynthError is an Error with its code, name and cause', () => {
    const cause = new RangeError('inner');
    const e = new RobustSynthError('ERR_BAD_INPUT', 'bad', { cause });
    expect(e).toBeInstanceOf(Error);
    expect([e.name, e.code, e.message, e.cause]).toEqual(['RobustSynthError', 'ERR_BAD_INPUT', 'bad', cause]);
    expect(isRobustSynthError(e, 'ERR_BAD_INPUT')).toBe(true);
    expect(isRobustSynthError(e, 'ERR_TORCH')).toBe(false);
    expect(isRobustSynthError(cause)).toBe(false);
  });
});
