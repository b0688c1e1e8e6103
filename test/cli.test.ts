// The command line, end to end: outputs, manifest, contact sheet, --help, one error style
// (the flag named, exit code 2), exit codes, resumable batches.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { closest, COMMANDS } from '../lib/cli/index.js';
import { joinNegativeValues } from '../lib/cli/command.js';
import { buildInfo, Classifier, downUp, fillHole, holeMask, readFashionMnist, writePng, type ImageBatch } from '../lib/index.js';
import { readImage } from '../lib/images.js';
import { slice } from '../lib/tensor.js';
import { FASHION_28 } from '../lib/tasks/common.js';
import { cliArgs, cliBadInputs, CLI_MODEL } from './fixtures/bad-inputs.js';
import { tempDir } from './helpers.js';

const names = () => COMMANDS.map((c) => c.name);

const CLI = join(import.meta.dirname, '../lib/cli/index.ts');
const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
const manifest = (dir: string) => JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).entries as Array<Record<string, any>>;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function cliAsync(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}

/** Runs command lines two at a time (the machine has two cores). */
async function cliAll(list: string[][]): Promise<Run[]> {
  const out: Run[] = [];
  for (let i = 0; i < list.length; i += 2) out.push(...(await Promise.all(list.slice(i, i + 2).map(cliAsync))));
  return out;
}

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
    expect(m[0]).toMatchObject({ task: 'generate', target: { index: 7, name: 'Sneaker' }, source: 'seed:mvn' });
    // The manifest records the settings the run used: the task's 28x28 defaults.
    expect(m[0]!.settings).toMatchObject({ ...FASHION_28.generate, model: 'fashion-robust' });
    for (const e of m) expect(existsSync(join(out, e.file))).toBe(true);
    expect(existsSync(join(out, 'contact-sheet.png'))).toBe(true);
  });

  it('inpaint, super-resolve and translate run on a file; the manifest names the task as the library does', async () => {
    const src = await sourceDir(1);
    const img = join(src, 'img000.png');
    const source = await readImage(img, { channels: 1, height: 28, width: 28 });
    const clf = await Classifier.load('fashion-robust');
    const seen = async (b: ImageBatch) => (await clf.predict(b))[0]!;
    const crossEntropy = async (b: ImageBatch, k: number) => {
      const l = await clf.logits(b);
      const row = Array.from(l.data.subarray(0, l.shape[1]));
      const mx = Math.max(...row);
      return Math.log(row.reduce((a, v) => a + Math.exp(v - mx), 0)) + mx - row[k]!;
    };
    for (const [args, task] of [
      [['inpaint', '--image', img, '--hole', '8,8,10,10', '--iterations', '20'], 'inpaint'],
      [['super-resolve', '--image', img, '--factor', '4', '--iterations', '10'], 'superResolve'],
      [['translate', '--image', img, '--to', 'Bag', '--iterations', '20'], 'translate'],
    ] as const) {
      const out = tempDir();
      const r = cli([...args, '--out', out, '--threads', '1']);
      expect(r.status, r.stderr).toBe(0);
      const m = manifest(out);
      expect(m).toHaveLength(1);
      expect(m[0]!.task).toBe(task);
      expect(existsSync(join(out, 'contact-sheet.png'))).toBe(true);
      // What was written is the task's work, and the manifest tells the truth about it.
      const result = await readImage(join(out, m[0]!.file), { channels: 1, height: 28, width: 28 });
      expect(result.shape).toEqual([1, 1, 28, 28]);
      let moved = 0;
      const inside: number[] = [];
      const outside: number[] = [];
      for (let y = 0; y < 28; y++) {
        for (let x = 0; x < 28; x++) {
          const d = Math.abs(result.data[y * 28 + x]! - source.data[y * 28 + x]!);
          moved = Math.max(moved, d);
          (x >= 8 && x < 18 && y >= 8 && y < 18 ? inside : outside).push(d);
        }
      }
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      expect(moved, `${task} changed the image`).toBeGreaterThan(8 / 255);
      // Inpainting's penalty keeps the known pixels: they move far less than the hole's.
      if (task === 'inpaint') expect(mean(outside) * 4, 'inpaint keeps the pixels outside the hole').toBeLessThan(mean(inside));
      expect(Number.isFinite(m[0]!.loss)).toBe(true);
      expect(m[0]!.settings.iterations).toBe(Number(args[args.indexOf('--iterations') + 1]));
      const target = m[0]!.target.index as number;
      // Bag; a restoration aims at the class the model sees in what it starts from (the degraded image for super-resolution).
      expect(target).toBe(task === 'translate' ? 8 : await seen(task === 'superResolve' ? downUp(source, 4) : source));
      // The loss toward the target fell from the start the task began at.
      const start = task === 'superResolve' ? downUp(source, 4) : task === 'inpaint' ? fillHole(source, holeMask({ x: 8, y: 8, width: 10, height: 10 }, 28, 28)) : source;
      expect(await crossEntropy(result, target), task).toBeLessThan(await crossEntropy(start, target));
    }
  });

  it('--help and -h print each command\'s usage, every flag with its line, and exit 0', async () => {
    const names = COMMANDS.map((c) => c.name);
    expect(names).toEqual([
      'demo', 'generate', 'inpaint', 'super-resolve', 'translate', 'visualize-feature', 'paint-feature', 'invert', 'sketch-to-image',
      'fit-seeds', 'eval', 'study', 'serve', 'submit', 'worker', 'collect', 'status', 'models', 'setup', 'build',
    ]);
    const runs = await cliAll(names.flatMap((n) => [[n, '--help'], [n, '-h']]));
    for (const [i, entry] of COMMANDS.entries()) {
      const [long, short] = [runs[2 * i]!, runs[2 * i + 1]!];
      expect(long.status, `${entry.name} --help\n${long.stderr}`).toBe(0);
      expect(short.stdout, `${entry.name} -h`).toBe(long.stdout);
      expect(long.stdout).toContain(`Usage: robust-synth ${entry.name}`);
      const cmd = await entry.load();
      if (cmd.raw) continue; // setup and build print their own help
      expect(long.stdout).toContain(`robust-synth ${entry.name}: ${entry.summary}`);
      for (const [flag, spec] of Object.entries(cmd.options)) {
        const line = long.stdout.split('\n').find((l) => l.trimStart().startsWith(`--${flag}${spec.value ? ` ${spec.value}` : ''} `));
        expect(line, `${entry.name} --${flag}`).toBeDefined();
        expect(line!.trim().length, `${entry.name} --${flag} has a description`).toBeGreaterThan(`--${flag}`.length + 10);
      }
    }
    expect(runs[2 * names.indexOf('setup')]!.stdout).toContain('--check');
    expect(runs[2 * names.indexOf('build')]!.stdout).toContain('--libtorch');
    const top = cli(['--help']);
    expect(top.status).toBe(0);
    for (const n of names) expect(top.stdout).toMatch(new RegExp(`^  ${n} +\\S`, 'm'));
    expect(cli(['help', 'translate']).stdout).toContain('Usage: robust-synth translate');
    expect(cli([]).status).toBe(1);
  });

  it('bad input: one line that names the flag (or the file), the code, exit code 2 (1 for a model that does not load)', async () => {
    const cases = await cliBadInputs(tempDir('rs-cli-bad-'), { cuda: buildInfo().cudaAvailable });
    const runs = await cliAll(cases.map((c) => cliArgs(c, tempDir())));
    cases.forEach(({ args, code, exit, message }, i) => {
      const r = runs[i]!;
      const what = `${args.join(' ')}\n${r.stderr}`;
      expect(r.status, what).toBe(exit);
      expect(r.stderr.trim().split('\n'), what).toHaveLength(1);
      expect(r.stderr, what).toContain(`robust-synth ${args[0]}: `);
      expect(r.stderr.trim(), what).toMatch(new RegExp(`\\[${code}\\]$`));
      if (message) expect(r.stderr, what).toMatch(message);
    });
    const unknown = cli(['frobnicate']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate' \[ERR_BAD_INPUT\]/); // nothing near it
    const typo = cli(['genrate', '--class', '1']);
    expect(typo.status).toBe(2);
    expect(typo.stderr).toMatch(/unknown command 'genrate'; did you mean 'generate'\? \[ERR_BAD_INPUT\]/);
    expect(closest('super-reslove', names())).toBe('super-resolve');
    expect(closest('inpiant', names())).toBe('inpaint');
    expect(closest('vis', names())).toBe('visualize-feature');
    expect(closest('model', names())).toBe('models');
    expect(closest('xyz', names())).toBeUndefined();
  }, 600_000); // some 40 command lines, two at a time: minutes on a busy machine

  it('a negative value reaches validation: joined to its flag, never taken for a flag', () => {
    const opts = { eps: { type: 'string', description: '' }, bf16: { type: 'boolean', description: '' } } as const;
    expect(joinNegativeValues(['--eps', '-1', '--bf16'], opts)).toEqual(['--eps=-1', '--bf16']);
    expect(joinNegativeValues(['--eps', '-.5'], opts)).toEqual(['--eps=-.5']);
    expect(joinNegativeValues(['--eps', '-Infinity'], opts)).toEqual(['--eps=-Infinity']);
    expect(joinNegativeValues(['--eps', '--bf16'], opts)).toEqual(['--eps', '--bf16']);
    expect(joinNegativeValues(['--bf16', '-1'], opts)).toEqual(['--bf16', '-1']); // a boolean takes no value
    const r = cli(['generate', '--model', CLI_MODEL, '--class', '1', '--step', '-0.5', '--out', tempDir()]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--step must be a finite number >= 0, got -0.5 \[ERR_BAD_INPUT\]/);
  });

  it('an --out that is a file is refused before any compute, and nothing is written', async () => {
    const dir = tempDir('rs-out-file-');
    const file = join(dir, 'taken');
    writeFileSync(file, 'keep me');
    // Each would compute for minutes if it started.
    const lines = [
      ['generate', '--class', '1', '--count', '500', '--iterations', '100000'],
      ['translate', '--image', dir, '--to', 'Bag', '--iterations', '100000'],
      ['demo', '--count', '50'],
      ['eval'],
    ];
    const runs = await cliAll(lines.map((l) => [...l, '--out', file]));
    runs.forEach((r, i) => {
      const what = `${lines[i]!.join(' ')}\n${r.stderr}`;
      expect(r.status, what).toBe(2);
      expect(r.stderr, what).toMatch(new RegExp(`--out must be a directory, got ${file}, which exists and is not a directory \\[ERR_BAD_INPUT\\]`));
      expect(r.ms, what).toBeLessThan(30_000);
    });
    expect(readFileSync(file, 'utf8')).toBe('keep me');
    expect(readdirSync(dir)).toEqual(['taken']);
  });

  it('batch translation skips bad files, resumes after a kill, and leaves no partial file', async () => {
    const src = await sourceDir(12);
    writeFileSync(join(src, 'zz-broken.png'), 'not a png');
    const out = tempDir();
    const args = ['--import', 'tsx', CLI, 'translate', '--image', src, '--to', 'Sandal', '--iterations', '400', '--batch', '2', '--out', out];
    // Kill it once the manifest records some outputs (an image is written before the manifest
    // lists it; a kill between the two leaves an image the restart redoes).
    const listed = () => {
      try {
        return manifest(out).length;
      } catch {
        return 0; // not written yet (it is replaced atomically, so never half-written)
      }
    };
    await new Promise<void>((resolve) => {
      const child = spawn(process.execPath, args, { stdio: 'ignore' });
      const timer = setInterval(() => {
        if (listed() >= 2) {
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

  it("an image's result depends only on it and the settings: not on a corrupt file before it, nor on a partial batch", async () => {
    const src = await sourceDir(6); // img000..img005
    const withBad = tempDir('rs-src-bad-');
    for (const f of readdirSync(src)) writeFileSync(join(withBad, f), readFileSync(join(src, f)));
    writeFileSync(join(withBad, 'img002b.png'), 'not a png'); // sorted into the middle of the first batch
    writeFileSync(join(withBad, 'notes.txt'), 'not an image');
    const alone = tempDir('rs-src-alone-');
    writeFileSync(join(alone, 'img005.png'), readFileSync(join(src, 'img005.png'))); // one image in a batch of 4
    const outs = [tempDir(), tempDir(), tempDir()];
    const common = ['--to', 'Bag', '--iterations', '15', '--batch', '4', '--threads', '1'];
    const runs = await cliAll([src, withBad, alone].map((dir, i) => ['translate', '--image', dir, ...common, '--out', outs[i]!]));
    expect(runs[0]!.status, runs[0]!.stderr).toBe(0);
    expect(runs[1]!.status, runs[1]!.stderr).toBe(1); // one file skipped
    expect(runs[1]!.stderr).toMatch(/skipped .*img002b\.png/);
    expect(runs[1]!.stderr).toMatch(/ignored 1 file\(s\) that are not images by their extension: notes\.txt/);
    expect(runs[2]!.status, runs[2]!.stderr).toBe(0);
    expect(runs[2]!.stdout).toMatch(/translated 1 image to Bag/);
    const [plain, bad, one] = outs.map((o) => new Map(manifest(o).map((e) => [e.file, e])));
    expect(plain!.size).toBe(6);
    expect(bad!.size).toBe(6);
    for (const [file, e] of plain!) {
      // The loss is the float the engine computed: equal only if the computation was.
      expect(bad!.get(file)!.loss, file).toBe(e.loss);
      expect(readFileSync(join(outs[1]!, file)).equals(readFileSync(join(outs[0]!, file))), file).toBe(true);
    }
    expect(one!.get('img005-to-bag.png')!.loss).toBe(plain!.get('img005-to-bag.png')!.loss);
    expect(readFileSync(join(outs[2]!, 'img005-to-bag.png')).equals(readFileSync(join(outs[0]!, 'img005-to-bag.png')))).toBe(true);
  });

  it('setup --check names the Pythons it asked once each, also when none is installed', async () => {
    const { findPythonTorch } = await import('../lib/libtorch/python.js');
    const none = findPythonTorch(['python3', '/nonexistent/bin/python3'], { PATH: '/nonexistent/bin' });
    expect(none).toEqual([{ python: 'python3, /nonexistent/bin/python3', problem: 'not found' }]);
    const r = cli(['setup', '--check']);
    const pythonLines = r.stdout.split('\n').filter((l) => /python3?[: ]/i.test(l) && /torch|not found/.test(l));
    expect(new Set(pythonLines).size, r.stdout).toBe(pythonLines.length);
  });

  it('one name for the model directory: --model-dir, with models --dir kept as a deprecated alias', () => {
    const dir = tempDir('rs-models-');
    writeFileSync(join(dir, 'mine.pt'), '');
    for (const flag of ['--model-dir', '--dir']) {
      const r = cli(['models', flag, dir, '--json']);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).map((m: { path: string }) => m.path)).toContain(join(dir, 'mine.pt'));
    }
    const help = cli(['models', '--help']).stdout;
    expect(help).toMatch(/--model-dir DIR +also list/);
    expect(help).toMatch(/--dir DIR +deprecated: the old name of --model-dir/);
  });

  it('one name for the model directory: worker takes --model-dir, with --models kept as a deprecated alias', () => {
    const help = cli(['worker', '--help']).stdout;
    expect(help).toMatch(/--model-dir DIR +a directory of models/);
    expect(help).toMatch(/--models DIR +deprecated: the old name of --model-dir/);
    // Both names reach the same check, before any connection to Redis.
    const missing = join(tempDir('rs-worker-dirs-'), 'absent');
    for (const flag of ['--model-dir', '--models']) {
      const r = cli(['worker', '--redis', 'redis://127.0.0.1:1', flag, missing]);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain(`--model-dir must be a directory, got ${missing}`);
    }
  });

  it('models lists the embedded pair with their accuracies', () => {
    const r = cli(['models']);
    expect(r.status).toBe(0);
    // The robust model's radius and clean accuracy, as its card records them.
    const card = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'models', 'fashion-robust.json'), 'utf8'));
    const line = r.stdout.split('\n').find((l) => l.startsWith('fashion-robust '))!;
    expect(line).toContain(`robust (L2 eps ${card.eps})`);
    expect(line).toContain(`clean ${(100 * card.accuracy.clean).toFixed(1)}%`);
    expect(r.stdout).toMatch(/fashion-standard/);
  });
});
