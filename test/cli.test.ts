// The command line, end to end: outputs, manifest, contact sheet, exit codes, resumable batches.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readFashionMnist, writePng } from '../lib/index.js';
import { slice } from '../lib/tensor.js';
import { tempDir } from './helpers.js';

const CLI = join(import.meta.dirname, '../lib/cli.ts');
const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
const manifest = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).entries as Array<Record<string, any>>;

async function sourceDir(n: number): Promise<string> {
  const dir = tempDir('rs-src-');
  const t = readFashionMnist('test', { limit: n });
  for (let i = 0; i < n; i++) await writePng(join(dir, `img${String(i).padStart(3, '0')}.png`), slice(t.images, i, i + 1));
  return dir;
}

describe('robust-synth CLI', () => {
  it('generate writes PNGs, a manifest and a contact sheet', () => {
    const out = tempDir();
    const r = cli(['generate', '--model', 'fashion-robust', '--class', 'Sneaker', '--class', '9', '--count', '2', '--seed', 'mvn', '--out', out]);
    expect(r.stderr).toMatch(/generate: 100%/); // plain progress lines when not a TTY
    expect(r.status).toBe(0);
    const m = manifest(out);
    expect(m).toHaveLength(4);
    expect(m[0]).toMatchObject({ task: 'generation', target: { index: 7, name: 'Sneaker' }, source: 'seed:mvn' });
    expect(m[0]!.settings).toMatchObject({ eps: 8, model: 'fashion-robust' });
    for (const e of m) expect(existsSync(join(out, e.file))).toBe(true);
    expect(existsSync(join(out, 'contact-sheet.png'))).toBe(true);
  });

  it('inpaint, super-resolve and translate run on a file', async () => {
    const src = await sourceDir(1);
    const img = join(src, 'img000.png');
    for (const args of [
      ['inpaint', '--image', img, '--hole', '8,8,10,10', '--iterations', '20'],
      ['super-resolve', '--image', img, '--factor', '4', '--iterations', '10'],
      ['translate', '--image', img, '--to', 'Bag', '--iterations', '20'],
    ]) {
      const out = tempDir();
      const r = cli([...args, '--out', out]);
      expect(r.status, r.stderr).toBe(0);
      expect(manifest(out)).toHaveLength(1);
      expect(existsSync(join(out, 'contact-sheet.png'))).toBe(true);
    }
  });

  it('bad input: one-line error, exit code 2 (1 for a missing model)', () => {
    const cases: Array<[string[], RegExp, number]> = [
      [['generate', '--class', 'Zebra'], /Unknown class 'Zebra'/, 2],
      [['generate', '--class', '1', '--eps', 'abc'], /--eps expects a number/, 2],
      [['generate', '--class', '1', '--model', 'no-such-model'], /no model named 'no-such-model'/, 1],
      [['inpaint', '--image', '/nonexistent.png'], /image not found/, 2],
      [['inpaint', '--image', '/etc/passwd'], /cannot read image/, 2],
      [['translate', '--image', '/etc/passwd', '--to', 'Sandal'], /cannot read image \/etc\/passwd.*\[ERR_BAD_IMAGE\]/, 2],
      [['generate', '--class', '1', '--iterations=-1'], /integer >= 0 .* for iterations but received -1/, 2],
      [['generate', '--class', '1', '--iterations', '-1'], /--iterations/, 2],
      [['generate', '--class', '1', '--itrations', '5'], /Unknown option '--itrations'/, 2],
    ];
    const unknown = cli(['frobnicate']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate'/);
    for (const [args, msg, code] of cases) {
      const r = cli([...args, '--out', tempDir()]);
      expect(r.status, args.join(' ')).toBe(code);
      expect(r.stderr, args.join(' ')).toMatch(msg);
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
  });

  it('batch translation skips bad files, resumes after a kill, and leaves no partial file', async () => {
    const src = await sourceDir(12);
    writeFileSync(join(src, 'zz-broken.png'), 'not a png');
    const out = tempDir();
    const args = ['--import', 'tsx', CLI, 'translate', '--image', src, '--to', 'Sandal', '--iterations', '400', '--batch', '2', '--out', out];
    // Kill it once some outputs exist.
    await new Promise<void>((resolve) => {
      const child = spawn(process.execPath, args, { stdio: 'ignore' });
      const timer = setInterval(() => {
        const done = existsSync(out) ? readdirSync(out).filter((f) => f.endsWith('-to-sandal.png')).length : 0;
        if (done >= 2) {
          clearInterval(timer);
          child.kill('SIGKILL');
        }
      }, 20);
      child.on('exit', () => {
        clearInterval(timer);
        resolve();
      });
    });
    const before = manifest(out).length;
    expect(before).toBeGreaterThanOrEqual(2);
    expect(before).toBeLessThan(12);
    const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 300_000 });
    expect(r.stderr).toMatch(new RegExp(`resuming: ${before} of 13 already done`));
    expect(r.stderr).toMatch(/skipped .*zz-broken.png/);
    expect(r.status).toBe(1); // one input could not be read
    const m = manifest(out);
    expect(m).toHaveLength(12);
    expect(new Set(m.map((e) => e.file)).size).toBe(12);
    expect(readdirSync(out).filter((f) => f.includes('.partial'))).toEqual([]);
  });

  it('models lists the embedded pair with their accuracies', () => {
    const r = cli(['models']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/fashion-robust .*robust \(L2 eps 1.5\)/);
    expect(r.stdout).toMatch(/fashion-standard/);
    expect(r.stdout).toMatch(/clean \d+\.\d%/);
  });
});
