// Finding and fetching LibTorch (lib/libtorch/) and matching binaries to it
// (binding/select.ts). Downloads are tested against a loopback HTTP server serving small fake
// archives made here: checksum match and mismatch, a connection dropped mid-body.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkBinary, listBinaries, probeBinary, readElfDynamic, type BinaryCandidate,
} from '../binding/index.js';
import { LIBTORCH_VERSION, PINNED_SHA256, libtorchUrl, pinnedShaForArchive } from '../lib/libtorch/constants.js';
import {
  compareVersions, findLibTorch, findPythonTorch, formatResolution, inspectLibTorchDir, inspectSystem, majorMinor, noLibTorchMessage, type LibTorch,
} from '../lib/libtorch/discover.js';
import { cacheName, chooseBuild, cudaBuildForDriver, installLibTorch } from '../lib/libtorch/install.js';
import { runSetupCommand } from '../lib/libtorch/setup.js';
import { extractZip } from '../lib/libtorch/zip.js';
import { tempDir } from './helpers.js';

const PY = 'python3'; // any Python can write zips; torch is not needed here
// This machine's LibTorch major.minor (Debian 12: 1.13, Debian 13: 2.6), as a regular expression.
const SYS_MM_RE = majorMinor(inspectSystem().found?.version ?? 'none').replace('.', '\\.');

function write(path: string, text = ''): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
  return path;
}

/** A directory that looks like an unpacked official LibTorch. */
function fakeLibTorch(dir: string, buildVersion: string, opts: { cuda?: boolean; abi?: 0 | 1 } = {}): string {
  write(join(dir, 'build-version'), `${buildVersion}\n`);
  write(join(dir, 'lib', 'libtorch.so'));
  write(join(dir, 'lib', 'libc10.so'));
  if (opts.cuda) write(join(dir, 'lib', 'libtorch_cuda.so'));
  write(join(dir, 'include', 'torch', 'script.h'), '// fake');
  write(join(dir, 'share', 'cmake', 'Torch', 'TorchConfig.cmake'), `set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=${opts.abi ?? 1}")\n`);
  return dir;
}

/** Zips `dir`'s children with Python's zipfile (keeps Unix modes), as the official archives are laid out. */
function zipDir(parent: string, top: string, out: string): Buffer {
  execFileSync(PY, ['-m', 'zipfile', '-c', out, top], { cwd: parent });
  return readFileSync(out);
}

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

describe('what setup downloads', () => {
  it('builds the official URL for each build', () => {
    expect(libtorchUrl('cpu')).toBe(`https://download.pytorch.org/libtorch/cpu/libtorch-cxx11-abi-shared-with-deps-${LIBTORCH_VERSION}%2Bcpu.zip`);
    expect(libtorchUrl('cu124', '2.5.1', 'http://mirror.local/torch/')).toBe(
      'http://mirror.local/torch/cu124/libtorch-cxx11-abi-shared-with-deps-2.5.1%2Bcu124.zip',
    );
  });

  it('pins the CPU checksum and leaves unverified ones null, never invented', () => {
    expect(PINNED_SHA256.cpu).toMatch(/^[0-9a-f]{64}$/);
    for (const v of Object.values(PINNED_SHA256)) expect(v === null || /^[0-9a-f]{64}$/.test(v)).toBe(true);
    expect(pinnedShaForArchive(`/x/libtorch-cxx11-abi-shared-with-deps-${LIBTORCH_VERSION}+cpu.zip`)).toBe(PINNED_SHA256.cpu);
    expect(pinnedShaForArchive(`libtorch-cxx11-abi-shared-with-deps-${LIBTORCH_VERSION}%2Bcpu.zip`)).toBe(PINNED_SHA256.cpu);
    expect(pinnedShaForArchive('libtorch-cxx11-abi-shared-with-deps-2.0.0+cpu.zip')).toBeUndefined();
  });

  it('compares driver versions numerically', () => {
    expect(compareVersions('550.54.14', '550.9')).toBe(1);
    expect(compareVersions('525.60.13', '530.30.02')).toBe(-1);
    expect(compareVersions('530.30.02', '530.30.02')).toBe(0);
  });

  it('picks the newest CUDA build the driver runs', () => {
    expect(cudaBuildForDriver('560.35.03')).toBe('cu124');
    expect(cudaBuildForDriver('550.54.14')).toBe('cu124');
    expect(cudaBuildForDriver('535.104.05')).toBe('cu121');
    expect(cudaBuildForDriver('525.60.13')).toBe('cu118');
    expect(cudaBuildForDriver('470.82.01')).toBeUndefined();
    expect(cudaBuildForDriver(undefined)).toBeUndefined();
  });

  it('chooses CPU without a driver, CUDA with one, and obeys --variant', () => {
    expect(chooseBuild(undefined, undefined)).toMatchObject({ build: 'cpu', why: 'no NVIDIA driver found' });
    expect(chooseBuild(undefined, '535.104.05').build).toBe('cu121');
    expect(chooseBuild('cpu', '560.1').build).toBe('cpu');
    expect(chooseBuild('cuda', '560.1').build).toBe('cu124');
    const noDriver = chooseBuild('cuda', undefined);
    expect(noDriver.build).toBeUndefined();
    expect(noDriver.why).toMatch(/no NVIDIA driver.*--variant cu124/);
    expect(chooseBuild('cu118', undefined).build).toBe('cu118');
    expect(chooseBuild('rocm', undefined).why).toMatch(/unknown --variant 'rocm'/);
  });
});

describe('reading a LibTorch directory', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('rs-lt-');
  });

  it('reads an official LibTorch: version, CUDA build and ABI', () => {
    const t = inspectLibTorchDir(fakeLibTorch(join(dir, 'official'), '2.5.1+cu124', { cuda: true }), 'LIBTORCH');
    expect(t).toMatchObject({ version: '2.5.1+cu124', variant: 'cuda', cuda: 'cu124', cxx11Abi: true, versionFrom: 'build-version' });
    expect(t.cmakePrefix).toBe(join(dir, 'official'));
    expect(cacheName(t)).toBe('2.5.1-cu124');
  });

  it('reads a Python torch package from version.py', () => {
    const py = join(dir, 'site-packages', 'torch');
    write(join(py, 'version.py'), "__version__ = '2.3.0+cu121'\ndebug = False\ncuda: Optional[str] = '12.1'\n");
    write(join(py, 'lib', 'libtorch.so'));
    const t = inspectLibTorchDir(py, 'python');
    expect(t).toMatchObject({ version: '2.3.0+cu121', variant: 'cuda', cuda: '12.1', versionFrom: 'version.py' });
    expect(t.cmakePrefix).toBeUndefined();
    expect(majorMinor(t.version)).toBe('2.3');
  });

  it('reads a CPU Python torch with cuda = None', () => {
    const py = join(dir, 'cpu-py', 'torch');
    write(join(py, 'version.py'), "__version__ = '1.13.0a0'\ncuda = None\n");
    write(join(py, 'lib', 'libtorch.so'));
    expect(inspectLibTorchDir(py, 'python')).toMatchObject({ variant: 'cpu', cuda: undefined });
  });

  it('refuses directories that are not a usable LibTorch, saying why', () => {
    expect(() => inspectLibTorchDir(join(dir, 'missing'), 'LIBTORCH')).toThrow(/does not exist/);
    write(join(dir, 'nolib', 'build-version'), '2.5.1+cpu');
    expect(() => inspectLibTorchDir(join(dir, 'nolib'), 'LIBTORCH')).toThrow(/no lib\/libtorch\.so/);
    write(join(dir, 'noversion', 'lib', 'libtorch.so'));
    expect(() => inspectLibTorchDir(join(dir, 'noversion'), 'LIBTORCH')).toThrow(/cannot tell the version/);
    fakeLibTorch(join(dir, 'rocm'), '2.5.1+rocm6.1');
    expect(() => inspectLibTorchDir(join(dir, 'rocm'), 'LIBTORCH')).toThrow(/ROCm/);
  });
});

describe('resolution order: LIBTORCH, cache, Python torch, system', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let python: string;
  let noTorchPython: string;
  let sysLib: string;

  beforeAll(() => {
    dir = tempDir('rs-order-');
    fakeLibTorch(join(dir, 'explicit'), '2.4.0+cpu');
    fakeLibTorch(join(dir, 'cache', 'libtorch', '2.5.1-cpu'), '2.5.1+cpu');
    const torch = join(dir, 'py', 'torch');
    write(join(torch, 'version.py'), "__version__ = '2.2.0'\ncuda = None\n");
    write(join(torch, 'lib', 'libtorch.so'));
    // Stand-ins for Python executables: they answer the probe as a real one would.
    python = write(join(dir, 'bin', 'python-with-torch'), `#!/bin/sh\necho '{"torch": "${torch}", "exe": "/opt/py/bin/python3"}'\n`);
    noTorchPython = write(join(dir, 'bin', 'python-without'), `#!/bin/sh\necho '{"torch": null, "exe": "/opt/other/python3"}'\n`);
    chmodSync(python, 0o755);
    chmodSync(noTorchPython, 0o755);
    sysLib = join(dir, 'usr', 'lib', 'x86_64-linux-gnu');
    write(join(sysLib, 'libtorch.so.1.13.0'));
    symlinkSync('libtorch.so.1.13.0', join(sysLib, 'libtorch.so.1.13'));
    write(join(sysLib, 'cmake', 'Torch', 'TorchConfigVersion.cmake'), 'set(PACKAGE_VERSION "1.13.0")\n');
    write(join(sysLib, 'cmake', 'Torch', 'TorchConfig.cmake'), 'set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=1")\n');
    env = { PATH: process.env.PATH, HOME: join(dir, 'home'), ROBUST_SYNTH_CACHE: join(dir, 'cache') };
  });

  const find = (e: NodeJS.ProcessEnv, over: Partial<Parameters<typeof findLibTorch>[0]> = {}) =>
    findLibTorch({ env: e, pythons: [noTorchPython, python], systemLibDirs: [sysLib], driver: null, ...over });

  it('uses $LIBTORCH first', () => {
    const r = find({ ...env, LIBTORCH: join(dir, 'explicit') });
    expect(r.chosen).toMatchObject({ source: 'LIBTORCH', version: '2.4.0+cpu' });
    expect(formatResolution(r)).toMatch(/LIBTORCH=.*explicit: LibTorch 2\.4\.0\+cpu \(CPU\).*<- used/);
  });

  it('then the download cache', () => {
    expect(find(env).chosen).toMatchObject({ source: 'cache', version: '2.5.1+cpu' });
  });

  it('then a Python torch, skipping Pythons without one', () => {
    const r = find({ ...env, ROBUST_SYNTH_CACHE: join(dir, 'empty-cache') });
    expect(r.chosen).toMatchObject({ source: 'python', version: '2.2.0', root: join(dir, 'py', 'torch') });
    expect(formatResolution(r)).toContain('/opt/other/python3): has no torch module');
  });

  it('then the system LibTorch (Debian reports 1.13.0 for 1.13.1)', () => {
    const r = find({ ...env, ROBUST_SYNTH_CACHE: join(dir, 'empty-cache') }, { pythons: [noTorchPython] });
    expect(r.chosen).toMatchObject({ source: 'system', version: '1.13.0', libDir: sysLib, cmakePrefix: join(sysLib, 'cmake'), cxx11Abi: true });
  });

  it('for building, skips a LibTorch without a CMake config', () => {
    const r = find({ ...env, ROBUST_SYNTH_CACHE: join(dir, 'empty-cache') }, { purpose: 'build' });
    expect(r.chosen?.source).toBe('system');
    expect(r.candidates.find((c) => c.source === 'python' && c.found)?.skipped).toMatch(/no CMake config/);
  });

  it('asks each Python once per process, also when it is named twice (python3 on PATH is /usr/bin/python3)', () => {
    const log = join(dir, 'asked.log');
    const torch = join(dir, 'py', 'torch');
    const counting = write(join(dir, 'bin2', 'python-counting'), `#!/bin/sh\necho x >> '${log}'\necho '{"torch": "${torch}", "exe": "/opt/c/python3"}'\n`);
    chmodSync(counting, 0o755);
    symlinkSync(counting, join(dir, 'bin2', 'python3'));
    const e = { ...env, PATH: `${join(dir, 'bin2')}:${env.PATH}`, ROBUST_SYNTH_CACHE: join(dir, 'empty-cache') };
    for (let i = 0; i < 3; i++) {
      expect(findPythonTorch(['python3', counting], e)).toEqual([{ python: `${join(dir, 'bin2', 'python3')} (/opt/c/python3)`, torch }]);
      expect(find(e, { pythons: ['python3', counting] }).chosen).toMatchObject({ source: 'python', root: torch });
    }
    expect(readFileSync(log, 'utf8')).toBe('x\n');
  });

  it('never ignores a LIBTORCH that is set but unusable', () => {
    const r = find({ ...env, LIBTORCH: join(dir, 'nowhere') });
    expect(r.chosen).toBeUndefined();
    expect(r.error).toMatch(/LIBTORCH is set to .*nowhere.*does not exist/);
    expect(noLibTorchMessage(r, env)).toMatch(/unset it/);
  });

  it('with nothing found, one error lists every fix', () => {
    const r = find({ ...env, ROBUST_SYNTH_CACHE: join(dir, 'empty-cache') }, { pythons: [noTorchPython, join(dir, 'no-such-python')], systemLibDirs: [join(dir, 'empty')] });
    expect(r.chosen).toBeUndefined();
    const msg = noLibTorchMessage(r, env);
    expect(msg).toContain('no LibTorch found');
    expect(msg).toMatch(/1\. \$LIBTORCH\s+not set/);
    expect(msg).toContain('no-such-python: not found');
    expect(msg).toContain('apt-get install libtorch-dev');
    expect(msg).toContain('export LIBTORCH=');
    expect(msg).toContain('npx robust-synth setup');
    expect(msg).toContain('setup --archive');
  });
});

describe('matching binaries to a LibTorch', () => {
  let real: BinaryCandidate;
  // The machine's own LibTorch (Debian 12: 1.13, Debian 13: 2.6) and a binary built for it.
  const found = inspectSystem().found;
  if (!found) throw new Error('no system LibTorch: install libtorch-dev');
  const system: LibTorch = { ...found, source: 'system', versionFrom: 'test' };
  const MM = majorMinor(system.version);
  const mmRe = MM.replace('.', '\\.');
  const other = MM === '2.5' ? '2.4.1+cpu' : '2.5.1+cpu';
  beforeAll(() => {
    const built = listBinaries().find((b) => b.record && majorMinor(b.record.torchVersion) === MM);
    if (!built) throw new Error(`no binary built for LibTorch ${MM}: run \`npm run build:native\` or \`npm run prebuildify\` first`);
    real = built;
  });

  it('reads the libraries a binary links', () => {
    const elf = readElfDynamic(real.path)!;
    expect(elf.needed).toContain(`libtorch.so.${MM}`);
    expect(readElfDynamic(`${system.libDir}/libtorch.so.${MM}`)?.soname).toBe(`libtorch.so.${MM}`);
    expect(readElfDynamic(join(process.cwd(), 'test', 'helpers.ts'))).toBeUndefined();
  });

  it('accepts the same major.minor and lists the libraries to load from the resolved directory', () => {
    const c = checkBinary({ ...system, version: `${MM}.1` }, real);
    expect(c).toMatchObject({ ok: true, exact: true });
    if (c.ok) expect(c.preload.map((p) => p.split('/').pop())).toEqual(expect.arrayContaining([`libtorch.so.${MM}`, `libc10.so.${MM}`]));
  });

  it("refuses a binary that needs a newer glibc than the system's, saying both versions", () => {
    expect(checkBinary(system, real)).toMatchObject({ ok: true });
    const saved = process.env.ROBUST_SYNTH_TEST_GLIBC;
    process.env.ROBUST_SYNTH_TEST_GLIBC = '2.17';
    try {
      expect(checkBinary(system, real)).toMatchObject({ ok: false, why: expect.stringMatching(/^needs glibc 2\.\d+ or newer; this system has glibc 2\.17/) });
    } finally {
      if (saved === undefined) delete process.env.ROBUST_SYNTH_TEST_GLIBC;
      else process.env.ROBUST_SYNTH_TEST_GLIBC = saved;
    }
  });

  it('refuses another version, a CUDA build on a CPU LibTorch, and the other C++ ABI', () => {
    expect(checkBinary({ ...system, version: other }, real)).toMatchObject({
      ok: false, why: expect.stringMatching(new RegExp(`^built for LibTorch ${mmRe}\\.x \\(${mmRe}(\\.\\d+)?\\); this one is ${other.replace(/[.+]/g, '\\$&')}$`)),
    });
    const cudaBinary = { ...real, record: { ...real.record!, variant: 'cuda' as const } };
    expect(checkBinary(system, cudaBinary)).toMatchObject({ ok: false, why: expect.stringMatching(new RegExp(`^a CUDA build \\(LibTorch ${mmRe}[.0-9]*\\); this LibTorch is CPU-only$`)) });
    const oldAbi = { ...real, record: { ...real.record!, cxx11Abi: false } };
    expect(checkBinary(system, oldAbi)).toMatchObject({ ok: false, why: expect.stringMatching(/pre-C\+\+11.*ABI/) });
  });

  it('runs a CPU build on a CUDA LibTorch of the same version, as a marked fallback', () => {
    expect(checkBinary({ ...system, variant: 'cuda', cuda: '11.7' }, real)).toMatchObject({ ok: true, exact: false });
  });

  it('refuses a LibTorch whose library names the binary does not link', () => {
    const dir = fakeLibTorch(join(tempDir('rs-names-'), 'lt'), `${MM}.1+cpu`);
    expect(checkBinary(inspectLibTorchDir(dir, 'LIBTORCH'), real)).toMatchObject({
      ok: false, why: expect.stringMatching(new RegExp(`links lib\\w+\\.so\\.${mmRe}, which .* does not provide`)),
    });
  });

  it('probes a binary in a child process: a working one reports its build', () => {
    const c = checkBinary(system, real);
    const r = probeBinary(real.path, c.ok ? c.preload : []);
    expect(r).toMatchObject({ ok: true, info: { variant: 'cpu', torchVersion: expect.stringMatching(new RegExp(`^${mmRe}\\.\\d+$`)) } });
  });

  it('probes a binary in a child process: a crashing one kills the child, not us', () => {
    const dir = tempDir('rs-crash-');
    const src = write(join(dir, 'crash.c'), '#include <signal.h>\n__attribute__((constructor)) static void boom(void) { raise(SIGSEGV); }\n');
    let lib: string;
    try {
      execFileSync('cc', ['-shared', '-fPIC', '-o', join(dir, 'crash.node'), src], { stdio: 'pipe' });
      lib = join(dir, 'crash.node');
    } catch {
      lib = write(join(dir, 'garbage.node'), 'not an ELF file'); // no compiler: a load failure instead of a crash
    }
    const r = probeBinary(lib, []);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.why).toMatch(/SIGSEGV|invalid ELF header|too short/);
  });
});

describe('download, verify, unpack (loopback server)', () => {
  let dir: string;
  let server: Server;
  let base: string;
  let good: Buffer;
  let cuda: Buffer;
  let evil: Buffer;
  const requests: string[] = [];

  beforeAll(async () => {
    dir = tempDir('rs-dl-');
    const src = join(dir, 'src');
    fakeLibTorch(join(src, 'libtorch'), `${LIBTORCH_VERSION}+cpu`);
    write(join(src, 'libtorch', 'bin', 'tool'), '#!/bin/sh\necho hi\n');
    chmodSync(join(src, 'libtorch', 'bin', 'tool'), 0o755);
    write(join(src, 'libtorch', 'lib', 'big.bin'), 'x'.repeat(200_000)); // several deflate blocks
    good = zipDir(src, 'libtorch', join(dir, 'good.zip'));
    const srcCuda = join(dir, 'src-cuda');
    fakeLibTorch(join(srcCuda, 'libtorch'), `${LIBTORCH_VERSION}+cu124`, { cuda: true });
    cuda = zipDir(srcCuda, 'libtorch', join(dir, 'cuda.zip'));
    execFileSync(PY, ['-c', 'import sys, zipfile\nz = zipfile.ZipFile(sys.argv[1], "w")\nz.writestr("libtorch/build-version", "2.5.1+cpu")\nz.writestr("../evil", "x")\nz.close()', join(dir, 'evil.zip')]);
    evil = readFileSync(join(dir, 'evil.zip'));

    server = createServer((req, res) => {
      const url = req.url ?? '';
      requests.push(url);
      const send = (body: Buffer | string) => {
        res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (url === '/good.zip' || url === '/cpu/libtorch-cxx11-abi-shared-with-deps-2.5.1%2Bcpu.zip') return send(good);
      if (url === '/cu124/libtorch-cxx11-abi-shared-with-deps-2.5.1%2Bcu124.zip') return send(cuda);
      if (url === '/cu124/libtorch-cxx11-abi-shared-with-deps-2.5.1%2Bcu124.zip.sha256') return send(`${sha(cuda)}  libtorch.zip\n`);
      if (url === '/with-sidecar.zip') return send(good);
      if (url === '/with-sidecar.zip.sha256') return send(`${sha(good)}\n`);
      if (url === '/evil.zip') return send(evil);
      if (url === '/redirect.zip') {
        res.writeHead(302, { location: '/good.zip' });
        return res.end();
      }
      if (url === '/dropped.zip') {
        // Promise the whole archive, send half, then cut the connection.
        res.writeHead(200, { 'content-length': good.length });
        res.write(good.subarray(0, good.length >> 1), () => setTimeout(() => res.socket?.destroy(), 20));
        return;
      }
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(() => new Promise<void>((ok) => (server ? server.close(() => ok()) : ok())));

  /** Entries in the cache dir: after any run, only complete installs, never temp files. */
  const listing = (cacheDir: string) => (existsSync(cacheDir) ? readdirSync(cacheDir).sort() : []);

  it('installs when the checksum matches, atomically, then reuses it', async () => {
    const cacheDir = join(dir, 'c1', 'libtorch');
    const r = await installLibTorch({ url: `${base}/good.zip`, sha256: sha(good), name: '2.5.1-cpu', cacheDir });
    expect(r).toMatchObject({ alreadyInstalled: false, verifiedBy: 'pinned', sha256: sha(good) });
    expect(r.libtorch).toMatchObject({ version: '2.5.1+cpu', variant: 'cpu', source: 'cache' });
    expect(listing(cacheDir)).toEqual(['2.5.1-cpu']);
    expect(readFileSync(join(cacheDir, '2.5.1-cpu', 'lib', 'big.bin'), 'utf8')).toBe('x'.repeat(200_000));
    expect(readFileSync(join(cacheDir, '2.5.1-cpu', 'bin', 'tool'), 'utf8')).toContain('echo hi');
    expect(execFileSync(join(cacheDir, '2.5.1-cpu', 'bin', 'tool'), { encoding: 'utf8' })).toBe('hi\n'); // mode kept
    expect(JSON.parse(readFileSync(join(cacheDir, '2.5.1-cpu', 'robust-synth-install.json'), 'utf8'))).toMatchObject({ sha256: sha(good) });
    const again = await installLibTorch({ url: `${base}/good.zip`, sha256: sha(good), name: '2.5.1-cpu', cacheDir });
    expect(again.alreadyInstalled).toBe(true);
    // The resolver finds it in the cache.
    const found = findLibTorch({ env: { ROBUST_SYNTH_CACHE: join(dir, 'c1') }, pythons: [], systemLibDirs: [], driver: null });
    expect(found.chosen).toMatchObject({ source: 'cache', root: join(cacheDir, '2.5.1-cpu'), version: '2.5.1+cpu' });
  });

  it('follows redirects', async () => {
    const cacheDir = join(dir, 'c-redirect');
    const r = await installLibTorch({ url: `${base}/redirect.zip`, sha256: sha(good), name: 'x', cacheDir });
    expect(r.libtorch.version).toBe('2.5.1+cpu');
  });

  it('refuses a checksum mismatch and installs nothing', async () => {
    const cacheDir = join(dir, 'c2');
    await expect(installLibTorch({ url: `${base}/good.zip`, sha256: 'ab'.repeat(32), name: '2.5.1-cpu', cacheDir })).rejects.toMatchObject({
      code: 'ERR_LIBTORCH',
      message: expect.stringMatching(new RegExp(`checksum mismatch .*expected sha256 ${'ab'.repeat(32)}, got ${sha(good)}.*nothing was installed`)),
    });
    expect(listing(cacheDir)).toEqual([]);
  });

  it('leaves no half-unpacked tree when the connection drops mid-body', async () => {
    const cacheDir = join(dir, 'c3');
    await expect(installLibTorch({ url: `${base}/dropped.zip`, sha256: sha(good), name: '2.5.1-cpu', cacheDir })).rejects.toMatchObject({
      code: 'ERR_LIBTORCH',
      message: expect.stringMatching(/dropped\.zip (was cut off|failed after \d+ bytes)/),
    });
    expect(listing(cacheDir)).toEqual([]);
  });

  it('uses a .sha256 published beside the archive when none is pinned', async () => {
    const cacheDir = join(dir, 'c4');
    const r = await installLibTorch({ url: `${base}/with-sidecar.zip`, name: '2.5.1-cpu', cacheDir });
    expect(r.verifiedBy).toBe(`sidecar ${base}/with-sidecar.zip.sha256`);
  });

  it('without any checksum, refuses before downloading unless told --no-verify', async () => {
    const cacheDir = join(dir, 'c5');
    const before = requests.filter((u) => u === '/good.zip').length;
    await expect(installLibTorch({ url: `${base}/good.zip`, name: '2.5.1-cpu', cacheDir })).rejects.toThrow(/cannot be verified.*--sha256 <hex>.*--no-verify/);
    expect(requests.filter((u) => u === '/good.zip').length).toBe(before);
    expect(listing(cacheDir)).toEqual([]);
    const r = await installLibTorch({ url: `${base}/good.zip`, name: '2.5.1-cpu', cacheDir, verify: false });
    expect(r).toMatchObject({ verifiedBy: 'not verified', sha256: sha(good) });
  });

  it('installs from a local archive (offline), named by what it holds', async () => {
    const cacheDir = join(dir, 'c6');
    const r = await installLibTorch({ archive: join(dir, 'cuda.zip'), sha256: sha(cuda), cacheDir });
    expect(r.dir).toBe(join(cacheDir, '2.5.1-cu124'));
    expect(r.libtorch).toMatchObject({ variant: 'cuda', cuda: 'cu124' });
  });

  it('refuses entries that would escape the target directory', async () => {
    const cacheDir = join(dir, 'c7');
    await expect(installLibTorch({ url: `${base}/evil.zip`, sha256: sha(evil), name: 'evil', cacheDir })).rejects.toThrow(/points outside the target directory/);
    expect(listing(cacheDir)).toEqual([]);
    expect(existsSync(join(dir, 'evil'))).toBe(false);
  });

  it('keeps symlinks inside the tree and refuses ones that lead out', async () => {
    const make = (out: string, linkTarget: string) =>
      execFileSync(PY, ['-c', [
        'import stat, sys, zipfile',
        'z = zipfile.ZipFile(sys.argv[1], "w")',
        'z.writestr("libtorch/build-version", "2.5.1+cpu")',
        'z.writestr("libtorch/lib/libtorch.so.2.5", "")',
        'zi = zipfile.ZipInfo("libtorch/lib/libtorch.so"); zi.create_system = 3; zi.external_attr = (stat.S_IFLNK | 0o777) << 16',
        'z.writestr(zi, sys.argv[2])',
        'z.close()',
      ].join('\n'), out, linkTarget]);
    make(join(dir, 'links.zip'), 'libtorch.so.2.5');
    const ok = tempDir('rs-links-');
    await extractZip(join(dir, 'links.zip'), ok);
    expect(readlinkSync(join(ok, 'libtorch', 'lib', 'libtorch.so'))).toBe('libtorch.so.2.5');
    make(join(dir, 'badlink.zip'), '../../../../etc/passwd');
    await expect(extractZip(join(dir, 'badlink.zip'), tempDir('rs-links-'))).rejects.toThrow(/link to \.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd, outside the target directory/);
  });

  it('refuses a chain of links that leads out only when followed (q -> ../../t, then p -> q/../..), and writes nothing outside', async () => {
    const make = (out: string, withFile: boolean) =>
      execFileSync(PY, ['-c', [
        'import stat, sys, zipfile',
        'z = zipfile.ZipFile(sys.argv[1], "w")',
        'def link(name, to):',
        '    zi = zipfile.ZipInfo(name); zi.create_system = 3; zi.external_attr = (stat.S_IFLNK | 0o777) << 16',
        '    z.writestr(zi, to)',
        'z.writestr("t/keep", "")',
        'link("x/y/q", "../../t")',
        'link("x/y/p", "q/../..")',
        'if sys.argv[2] == "1": z.writestr("x/y/p/escaped.txt", "written through a link")',
        'z.close()',
      ].join('\n'), out, withFile ? '1' : '0']);
    for (const withFile of [false, true]) {
      const parent = tempDir('rs-chain-');
      const dest = join(parent, 'd');
      mkdirSync(dest);
      const zip = join(parent, 'chain.zip');
      make(zip, withFile);
      await expect(extractZip(zip, dest)).rejects.toThrow(withFile ? /x\/y\/p/ : /x\/y\/p is a link to q\/\.\.\/\.\., which leads outside/);
      expect(readdirSync(parent).sort()).toEqual(['chain.zip', 'd']);
    }
  });

  it('extracts what `unzip` would', async () => {
    const out = tempDir('rs-unzip-');
    await extractZip(join(dir, 'good.zip'), out);
    expect(readdirSync(join(out, 'libtorch')).sort()).toEqual(['bin', 'build-version', 'include', 'lib', 'share']);
  });

  it('`setup --variant cu124 --mirror` downloads, verifies with the mirror\'s .sha256, and says what is next', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const env = { ...process.env, ROBUST_SYNTH_CACHE: join(dir, 'setup-cache'), LIBTORCH: '' };
    const code = await runSetupCommand(['--variant', 'cu124', '--mirror', base], { out: (s) => out.push(s), err: (s) => err.push(s), env });
    expect(err.join('\n')).toBe('');
    expect(code).toBe(0);
    const text = out.join('\n');
    expect(text).toContain(`Downloading LibTorch ${LIBTORCH_VERSION} (cu124: --variant cu124)`);
    expect(text).toMatch(/Installed LibTorch 2\.5\.1\+cu124 \(CUDA cu124\) .*sidecar/);
    expect(text).toContain('npx robust-synth build'); // no prebuilt binary for 2.5 in this checkout
    expect(readdirSync(join(dir, 'setup-cache', 'libtorch'))).toEqual(['2.5.1-cu124']);
  });

  it('`setup --variant cpu` refuses a mirror file that is not the pinned archive, and reports what it found', async () => {
    const out: string[] = [];
    const err: string[] = [];
    const env = { ...process.env, ROBUST_SYNTH_CACHE: join(dir, 'setup-cache2'), LIBTORCH: '' };
    const code = await runSetupCommand(['--variant', 'cpu', '--mirror', base], { out: (s) => out.push(s), err: (s) => err.push(s), env });
    expect(code).toBe(1);
    expect(err.join('\n')).toMatch(new RegExp(`checksum mismatch.*expected sha256 ${PINNED_SHA256.cpu}`));
    expect(err.join('\n')).toMatch(new RegExp(`This machine already has LibTorch ${SYS_MM_RE}`));
    expect(existsSync(join(dir, 'setup-cache2', 'libtorch', '2.5.1-cpu'))).toBe(false);
  });

  it('`setup` offline (nothing listening) reports the failure and what this machine has', async () => {
    const err: string[] = [];
    const env = { ...process.env, ROBUST_SYNTH_CACHE: join(dir, 'setup-cache3'), LIBTORCH: '' };
    const code = await runSetupCommand(['--variant', 'cpu', '--mirror', 'http://127.0.0.1:9'], { out: () => {}, err: (s) => err.push(s), env });
    expect(code).toBe(1);
    expect(err.join('\n')).toMatch(/could not download .*ECONNREFUSED/);
    expect(err.join('\n')).toMatch(new RegExp(`already has LibTorch ${SYS_MM_RE}`));
  });

  it('`setup --check` explains what this machine has and changes nothing', async () => {
    const out: string[] = [];
    const env = { ...process.env, ROBUST_SYNTH_CACHE: join(dir, 'check-cache'), LIBTORCH: '' };
    const code = await runSetupCommand(['--check'], { out: (s) => out.push(s), err: (s) => out.push(s), env });
    const text = out.join('\n');
    expect(text).toMatch(/1\. \$LIBTORCH\s+not set/);
    expect(text).toMatch(/3\. Python torch/);
    expect(text).toMatch(new RegExp(`4\\. system\\s+/usr/lib/x86_64-linux-gnu: LibTorch ${SYS_MM_RE}\\.\\d+ \\(CPU\\)`));
    expect(text).toMatch(/<- used/);
    expect(text).toMatch(new RegExp(`Binary: .*built against LibTorch ${SYS_MM_RE}.*matches`));
    expect(text).toMatch(/major\.minor/);
    expect(code).toBe(0);
    expect(existsSync(join(dir, 'check-cache'))).toBe(false);
  });
});
