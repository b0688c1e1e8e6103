// The package as users get it: `npm pack` (prepack builds the TypeScript and the prebuilt binary),
// installed into a fresh project with --ignore-scripts and no compiler on the PATH, then used.
// Runs a PGD on the system LibTorch, refuses a LibTorch of another version with ERR_LIBTORCH,
// falls back to the CPU when a CUDA LibTorch fails its probe, and explains itself with --check.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectSystem, majorMinor } from '../lib/libtorch/discover.js';
import { python, tempDir } from './helpers.js';

const ROOT = process.cwd();
// The machine's LibTorch (Debian 12: 1.13; Debian 13: 2.6): the flavor the package must run on here.
const SYSTEM = inspectSystem().found;
if (!SYSTEM) throw new Error('no system LibTorch: install libtorch-dev');
const MM = majorMinor(SYSTEM.version);
const mmRe = MM.replace('.', '\\.');
const OTHER = MM === '2.3' ? '2.4.1' : '2.3.1';
const FLAVOR = `torch${MM}-cpu`;
/** stderr without the kernel self-check's one-time note (a LibTorch that needed other settings). */
const quiet = (stderr: string) => stderr.split('\n').filter((l) => l && !l.startsWith('robust-synth: kernel self-check:')).join('\n');

let dir: string;
let app: string;
let bin: string;
let model: string;
let tarball: string;
let pkgDir: string;

/** A PATH holding only node and npm: no cc, g++, cmake, python3. */
function bareEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: bin, HOME: join(dir, 'home'), ...extra };
}

interface RunResult {
  ok: boolean;
  code?: string;
  name?: string;
  message?: string;
  steps?: number;
  shape?: number[];
  losses?: number[];
  loaded?: { path: string; kind: string; record: { torchVersion: string; variant: string }; libtorch: { source: string; version: string; libDir: string }; fallbacks: string[] };
}

function runApp(env: Record<string, string> = {}): { result: RunResult; stderr: string } {
  const r = spawnSync(join(bin, 'node'), ['run.mjs', model], { cwd: app, env: bareEnv(env), encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`run.mjs exited ${r.status ?? r.signal}: ${r.stderr}`);
  return { result: JSON.parse(r.stdout.trim().split('\n').at(-1)!) as RunResult, stderr: r.stderr };
}

beforeAll(() => {
  dir = tempDir('rs-ship-');
  // 1. Pack. prepack runs `build:ts` and `prebuildify` (which skips the native build when the
  //    sources and LibTorch match the existing prebuilt's record).
  execFileSync('npm', ['pack', '--pack-destination', dir], { cwd: ROOT, stdio: 'pipe', timeout: 280_000 });
  tarball = join(dir, readdirSync(dir).find((f) => f.endsWith('.tgz'))!);

  // 2. A PATH with node, npm and a shell (npm exec runs bins through `sh`), and no compiler.
  bin = join(dir, 'bin');
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, 'node'));
  symlinkSync('/bin/sh', join(bin, 'sh'));
  const npmCli = realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
  symlinkSync(npmCli, join(bin, 'npm'));
  mkdirSync(join(dir, 'home'));

  // 3. A fresh project; dependencies' install scripts blocked, as npm 11 does by default.
  app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  execFileSync(join(bin, 'npm'), ['install', tarball, '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'], {
    cwd: app,
    env: { PATH: bin, HOME: process.env.HOME }, // the real HOME: npm's package cache
    stdio: 'pipe',
    timeout: 180_000,
  });
  pkgDir = join(app, 'node_modules', 'robust-synth');
  writeFileSync(
    join(app, 'run.mjs'),
    `import { Classifier } from 'robust-synth';
const binding = await import(new URL('./node_modules/robust-synth/dist/binding/index.js', import.meta.url));
try {
  const clf = await Classifier.load(process.argv[2], { device: 'cpu', inputShape: [3, 16, 16] });
  const x0 = { data: new Float32Array(2 * 3 * 16 * 16).fill(0.5), shape: [2, 3, 16, 16] };
  const r = await clf.pgd({ x0, targets: [1, 2], eps: 2, step: 0.5, iterations: 5 });
  await clf.dispose();
  console.log(JSON.stringify({ ok: true, steps: r.stats.steps, shape: r.images.shape, losses: Array.from(r.losses), loaded: binding.bindingInfo() }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, code: e.code, name: e.name, message: e.message }));
}
`,
  );

  // 4. A small TorchScript classifier for [3, 16, 16] inputs.
  python(['test/fixtures/reference_pgd.py', join(dir, 'model')]);
  model = join(dir, 'model', 'model.pt');
}, 300_000);

// The installed project holds sharp's libvips (tens of MB): do not leave one per run.
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('npm pack -> npm install --ignore-scripts, no compiler', () => {
  it('ships a prebuilt binary with its LibTorch record, and needs no install script', () => {
    const pkg = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
    for (const s of ['preinstall', 'install', 'postinstall']) expect(pkg.scripts?.[s]).toBeUndefined();
    const flavor = join(pkgDir, 'prebuilds', FLAVOR, 'prebuilds', 'linux-x64');
    expect(readdirSync(flavor).sort()).toEqual(['robust-synth.glibc.json', 'robust-synth.glibc.node']);
    expect(JSON.parse(readFileSync(join(flavor, 'robust-synth.glibc.json'), 'utf8'))).toMatchObject({
      torchVersion: expect.stringMatching(new RegExp(`^${mmRe}\\.`)), variant: 'cpu', cxx11Abi: true,
    });
    expect(existsSync(join(pkgDir, 'build'))).toBe(false);
    // Only what runs: no developer scripts (the one documented entry is compiled into dist/scripts).
    expect(existsSync(join(pkgDir, 'scripts'))).toBe(false);
    expect(readdirSync(join(pkgDir, 'dist', 'scripts')).filter((f) => f.endsWith('.js'))).toEqual(['download-libtorch.js']);
  });

  it('runs a PGD through the prebuilt binary on the system LibTorch', () => {
    const { result, stderr } = runApp();
    expect(result).toMatchObject({ ok: true, steps: 5, shape: [2, 3, 16, 16] });
    expect(result.losses!.every(Number.isFinite)).toBe(true);
    expect(result.loaded!.kind).toBe('prebuilt');
    expect(result.loaded!.path.startsWith(pkgDir)).toBe(true);
    expect(result.loaded!.record).toMatchObject({ torchVersion: expect.stringMatching(new RegExp(`^${mmRe}\\.`)), variant: 'cpu' });
    // Debian's python3-torch and libtorch-dev are the same libraries in /usr/lib/<triplet>.
    expect(['python', 'system']).toContain(result.loaded!.libtorch.source);
    expect(realpathSync(join(result.loaded!.libtorch.libDir, 'libtorch.so'))).toMatch(new RegExp(`^/usr/lib/x86_64-linux-gnu/libtorch\\.so\\.${mmRe}`));
    expect(result.loaded!.fallbacks).toEqual([]);
    expect(quiet(stderr)).toBe('');
  });

  it('refuses a LibTorch of another version with ERR_LIBTORCH, before loading anything', () => {
    const fake = join(dir, `libtorch-${OTHER}`);
    mkdirSync(join(fake, 'lib'), { recursive: true });
    writeFileSync(join(fake, 'build-version'), `${OTHER}+cpu\n`);
    writeFileSync(join(fake, 'lib', 'libtorch.so'), ''); // never loaded: the refusal comes first
    const { result } = runApp({ LIBTORCH: fake });
    expect(result).toMatchObject({ ok: false, code: 'ERR_LIBTORCH', name: 'RobustSynthError' });
    expect(result.message).toContain(`No robust-synth binary here is built for LibTorch ${OTHER}+cpu (CPU) at ${fake} (found via LIBTORCH)`);
    expect(result.message).toMatch(new RegExp(`robust-synth\\.glibc\\.node \\(prebuilt\\): built for LibTorch ${mmRe}\\.x \\(${mmRe}\\.\\d+\\); this one is ${OTHER.replace(/\./g, '\\.')}\\+cpu`));
    expect(result.message).toContain('npx robust-synth build');
    expect(result.message).toContain('unset LIBTORCH');
    expect(result.message).toContain('npx robust-synth setup --check');
  });

  it('probes a CUDA LibTorch in a child process and falls back to the CPU, logging each step', () => {
    // A "CUDA" LibTorch of the system's version whose libtorch.so is broken: loading it would fail in the app.
    const fake = join(dir, 'libtorch-cuda-broken');
    mkdirSync(join(fake, 'lib'), { recursive: true });
    writeFileSync(join(fake, 'build-version'), `${MM}.1+cu117\n`);
    for (const l of [`libc10.so.${MM}`, `libtorch_cpu.so.${MM}`]) symlinkSync(`/usr/lib/x86_64-linux-gnu/${l}`, join(fake, 'lib', l));
    writeFileSync(join(fake, 'lib', `libtorch.so.${MM}`), 'broken');
    writeFileSync(join(fake, 'lib', 'libtorch_cuda.so'), 'broken');
    const { result, stderr } = runApp({ LIBTORCH: fake });
    expect(result).toMatchObject({ ok: true, steps: 5 });
    expect(result.loaded!.libtorch.source).not.toBe('LIBTORCH');
    expect(result.loaded!.libtorch.version.startsWith(`${MM}.`)).toBe(true);
    expect(stderr).toContain(`robust-synth: the CUDA LibTorch ${MM}.1+cu117 at ${fake} failed its probe`);
    expect(stderr).toContain(`libtorch.so.${MM}: file too short); falling back to the CPU`);
    expect(stderr).toMatch(new RegExp(`robust-synth: using LibTorch ${mmRe}\\.\\S+ \\(CPU\\) at \\S+ \\((python|system)\\) with prebuilds/torch${mmRe}-cpu`));
    expect(result.loaded!.fallbacks).toHaveLength(3);
  });

  it('`setup --check` explains what it found on this machine', () => {
    const script = join(pkgDir, 'dist', 'scripts', 'download-libtorch.js');
    const r = spawnSync(join(bin, 'node'), [script, '--check'], { cwd: app, env: bareEnv(), encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/1\. \$LIBTORCH\s+not set/);
    expect(r.stdout).toMatch(/2\. download cache\s+\S+\/home\/\.cache\/robust-synth\/libtorch: nothing downloaded yet/);
    expect(r.stdout).toMatch(/3\. Python torch\s+python3: not found/);
    expect(r.stdout).toMatch(new RegExp(`/usr/bin/python3: LibTorch ${mmRe}\\.\\S+ \\(CPU\\) at /usr/lib/python3/dist-packages/torch.*<- used`));
    expect(r.stdout).toMatch(new RegExp(`4\\. system\\s+/usr/lib/x86_64-linux-gnu: LibTorch ${mmRe}\\.\\d+ \\(CPU\\).*Debian's libtorch-dev`));
    expect(r.stdout).toMatch(new RegExp(`Binary: prebuilds/torch${mmRe}-cpu/prebuilds/linux-x64/robust-synth\\.glibc\\.node \\(prebuilt\\): built against LibTorch ${mmRe}\\.\\d+ \\(CPU\\): matches\\.`));
    // The kernel self-check ran (in child processes) and passed, with the defaults or changed settings.
    expect(r.stdout).toMatch(/Kernel self-check: fuser (on|off), oneDNN (on|off|capped to \w+), layout \S+ \((passed with the defaults|settings changed until the check passed)/);
    expect(r.stdout).toContain('compared as major.minor');
    expect(r.stdout).toMatch(/setup would download: https:\/\/download\.pytorch\.org\/libtorch\/cpu\/\S+ \(no NVIDIA driver found\), but it does not need to/);
  });

  // What a newcomer runs first, from the installed package: each needs the embedded models, their
  // cards and the seed statistics that ship beside them, so a file left out of the tarball fails here.
  it("runs the README's library example verbatim", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const example = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes("from 'robust-synth'") && b.includes('generate('));
    expect(example, 'the README has a library example that calls generate()').toBeDefined();
    writeFileSync(join(app, 'readme-example.mjs'), `${example}\nconsole.log(JSON.stringify({ shape: r.images.shape, predictions: Array.from(r.predictions) }));\n`);
    const r = spawnSync(join(bin, 'node'), ['readme-example.mjs'], { cwd: app, env: bareEnv(), encoding: 'utf8', timeout: 120_000 });
    expect(quiet(r.stderr)).toBe('');
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { shape: number[]; predictions: number[] };
    expect(out.shape).toEqual([8, 1, 28, 28]);
    expect(out.predictions).toHaveLength(8);
  });

  it('`robust-synth generate --class Bag` works with the default (fitted) seeds', () => {
    const out = join(dir, 'gen');
    const r = spawnSync(join(bin, 'npm'), ['exec', '--offline', '--', 'robust-synth', 'generate', '--class', 'Bag', '--out', out], { cwd: app, env: bareEnv(), encoding: 'utf8', timeout: 120_000 });
    expect(r.stderr).not.toContain('ERR_');
    expect(r.status).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { entries: Array<{ file: string; source: string; target: { name: string } }> };
    expect(manifest.entries).toHaveLength(1);
    expect(manifest.entries[0]).toMatchObject({ source: 'seed:mvn', target: { name: 'Bag' } });
    expect(existsSync(join(out, manifest.entries[0]!.file))).toBe(true);
  });

  it('`robust-synth demo --out DIR` writes its gallery', () => {
    const out = join(dir, 'demo');
    const r = spawnSync(join(bin, 'npm'), ['exec', '--offline', '--', 'robust-synth', 'demo', '--out', out], { cwd: app, env: bareEnv(), encoding: 'utf8', timeout: 600_000 });
    expect(r.stderr).not.toContain('ERR_');
    expect(r.status).toBe(0);
    expect(readFileSync(join(out, 'index.html'), 'utf8')).toContain('<img');
  }, 620_000);

  it('`npx robust-synth setup --check` works through the CLI', () => {
    const r = spawnSync(join(bin, 'npm'), ['exec', '--offline', '--', 'robust-synth', 'setup', '--check'], { cwd: app, env: bareEnv(), encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout).toContain('<- used');
    expect(r.status).toBe(0);
  });
});
