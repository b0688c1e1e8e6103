/**
 * Builds the prebuilt binary shipped in the npm package, for the LibTorch this machine resolves
 * (lib/libtorch/discover.ts; point LIBTORCH elsewhere to build another flavor):
 *
 *   prebuilds/torch<major.minor>-<cpu|cuda>/prebuilds/linux-x64/robust-synth.glibc.node
 *   prebuilds/torch<major.minor>-<cpu|cuda>/prebuilds/linux-x64/robust-synth.glibc.json   (what it was built against)
 *
 * One folder per LibTorch flavor because node-gyp-build ignores tags it does not know (such as
 * `cuda`): the loader chooses the flavor, then hands node-gyp-build that folder. prebuildify
 * drives the build and names and strips the file; cmake-js does the compiling (node-gyp's
 * default flags break the torch headers), through a small shim standing in for node-gyp.
 *
 * npm runs it at pack time (`prepack`); `npm run prebuildify [-- --force]` runs it by hand. It
 * skips the build when the flavor's record shows the same sources and LibTorch.
 */
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, platform, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { packageRoot } from '../binding/index.js';
import { describeLibTorch, findLibTorch, formatResolution, inspectLibTorchDir, majorMinor, type LibTorch } from '../lib/libtorch/discover.js';
import { cmakeJsBin } from '../lib/build.js';

const PREBUILT_NAME = 'robust-synth';

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Files under native/<dir>, subfolders included, in a fixed order (a flat folder hashes as it always did). */
function sourceFiles(native: string, dir: string): string[] {
  return readdirSync(join(native, dir))
    .sort()
    .flatMap((name) => (statSync(join(native, dir, name)).isDirectory() ? sourceFiles(native, join(dir, name)) : [join(dir, name)]));
}

/** Everything that changes the binary: the sources, the build files and the LibTorch. */
export function sourceHash(root: string, libtorch: LibTorch): string {
  const h = createHash('sha256');
  const native = join(root, 'native');
  const files = ['CMakeLists.txt', 'package.json', ...sourceFiles(native, 'src')];
  for (const f of files) {
    h.update(f);
    h.update(readFileSync(join(native, f)));
  }
  h.update(JSON.stringify([libtorch.version, libtorch.variant, libtorch.cxx11Abi, realpathSync(libtorch.libDir), platform(), arch()]));
  return h.digest('hex');
}

export function flavorName(torchVersion: string, variant: string): string {
  return `torch${majorMinor(torchVersion)}-${variant}`;
}

export interface PrebuildResult {
  flavorDir: string;
  binary: string;
  skipped: boolean;
}

/** Builds (or reuses) the prebuilt binary for `libtorch`. */
export async function prebuild(options: { root?: string; libtorch: LibTorch; force?: boolean; log?: (s: string) => void }): Promise<PrebuildResult> {
  const root = options.root ?? packageRoot();
  const log = options.log ?? ((s: string) => console.log(s));
  const { libtorch } = options;
  const hash = sourceHash(root, libtorch);
  const tuple = `${platform()}-${arch()}`;
  const flavorDir = join(root, 'prebuilds', flavorName(libtorch.version, libtorch.variant));
  const binDir = join(flavorDir, 'prebuilds', tuple);
  const existing = existsSync(binDir) ? readdirSync(binDir).find((f) => f.endsWith('.node')) : undefined;
  if (existing && !options.force) {
    try {
      const rec = JSON.parse(readFileSync(join(binDir, existing.replace(/\.node$/, '.json')), 'utf8')) as { sourceHash?: string };
      if (rec.sourceHash === hash) {
        log(`prebuild: ${relative(root, join(binDir, existing))} is up to date (same sources and LibTorch)`);
        return { flavorDir, binary: join(binDir, existing), skipped: true };
      }
    } catch {
      // no record: rebuild
    }
  }

  const cmakeJs = cmakeJsBin(root);
  if (!cmakeJs) throw new Error('prebuild: cmake-js is not installed (npm install --include=dev)');
  const require = createRequire(import.meta.url);
  const prebuildify = require('prebuildify') as (opts: Record<string, unknown>, cb: (err?: Error | null) => void) => void;

  const staging = mkdtempSync(join(tmpdir(), 'rs-prebuild-'));
  try {
    const shim = join(staging, 'cmake-js-as-node-gyp.sh');
    writeFileSync(
      shim,
      '#!/bin/sh\n# prebuildify runs this in place of node-gyp; node-gyp\'s arguments are not needed by cmake-js.\n' +
        `exec ${shQuote(process.execPath)} ${shQuote(cmakeJs)} rebuild --directory ${shQuote(join(root, 'native'))} ` +
        `--out ${shQuote(join(staging, 'build'))} ${shQuote(`--CDRS_VARIANT=${libtorch.variant}`)}\n`,
    );
    chmodSync(shim, 0o755);
    log(`prebuild: building for ${describeLibTorch(libtorch)} with prebuildify + cmake-js`);
    const savedLibtorch = process.env.LIBTORCH;
    process.env.LIBTORCH = libtorch.cmakePrefix ?? '';
    try {
      await new Promise<void>((ok, fail) =>
        prebuildify(
          { cwd: staging, out: staging, napi: true, strip: true, tagLibc: true, name: PREBUILT_NAME, nodeGyp: shim, targets: [] },
          (err) => (err ? fail(err) : ok()),
        ),
      );
    } finally {
      if (savedLibtorch === undefined) delete process.env.LIBTORCH;
      else process.env.LIBTORCH = savedLibtorch;
    }
    const built = join(staging, 'prebuilds', tuple);
    const file = readdirSync(built).find((f) => f.endsWith('.node'));
    if (!file) throw new Error(`prebuild: prebuildify produced nothing in ${built}`);
    const record = JSON.parse(readFileSync(join(staging, 'build', 'Release', 'robust_synth.json'), 'utf8')) as Record<string, unknown>;
    Object.assign(record, {
      sourceHash: hash,
      builtWith: 'prebuildify',
      libtorchSource: libtorch.source,
      libtorchVersionFound: libtorch.version,
      builtAt: new Date().toISOString(),
    });
    writeFileSync(join(built, file.replace(/\.node$/, '.json')), `${JSON.stringify(record, null, 2)}\n`);

    const flavor = flavorName(String(record.torchVersion), String(record.variant));
    const finalDir = join(root, 'prebuilds', flavor);
    // Dot-named while incomplete: the loader skips those, so it never sees half a flavor.
    const next = join(root, 'prebuilds', `.${flavor}.next-${process.pid}`);
    const old = join(root, 'prebuilds', `.${flavor}.old-${process.pid}`);
    mkdirSync(join(next, 'prebuilds'), { recursive: true });
    try {
      renameSync(built, join(next, 'prebuilds', tuple));
    } catch {
      // tmpdir on another filesystem
      mkdirSync(join(next, 'prebuilds', tuple), { recursive: true });
      for (const f of readdirSync(built)) copyFileSync(join(built, f), join(next, 'prebuilds', tuple, f));
    }
    if (existsSync(finalDir)) renameSync(finalDir, old);
    renameSync(next, finalDir);
    rmSync(old, { recursive: true, force: true });
    const binary = join(finalDir, 'prebuilds', tuple, file);
    log(`prebuild: wrote ${relative(root, binary)}`);
    return { flavorDir: finalDir, binary, skipped: false };
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** `npm run prebuildify [-- --force] [-- --libtorch DIR]`; resolves with the exit code. */
export async function runPrebuildCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { force: { type: 'boolean' }, libtorch: { type: 'string' } } });
  let libtorch: LibTorch | undefined;
  if (values.libtorch) {
    libtorch = inspectLibTorchDir(values.libtorch, 'LIBTORCH');
    if (!libtorch.cmakePrefix) throw new Error(`${values.libtorch} has no CMake config to build against`);
  } else {
    const res = findLibTorch({ purpose: 'build' });
    if (!res.chosen) {
      console.error(`prebuild: no LibTorch to build against.\n${formatResolution(res)}`);
      return 1;
    }
    libtorch = res.chosen;
  }
  await prebuild({ libtorch, force: values.force });
  return 0;
}

if (process.argv[1] && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url))) {
  runPrebuildCommand(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e) => {
      console.error((e as Error).message);
      process.exitCode = 1;
    },
  );
}
