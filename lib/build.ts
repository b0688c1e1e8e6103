/**
 * `robust-synth build`: compile the native addon from source for the LibTorch this machine has
 * (the same search as `robust-synth setup --check`; --libtorch or $LIBTORCH picks one), into
 * build/Release inside the package, where the loader prefers it.
 *
 * It never runs at install time (npm 11 blocks dependencies' install scripts): the loader's
 * errors name the command to run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import { explainBinary, listBinaries, packageRoot } from '../binding/index.js';
import {
  describeLibTorch, findLibTorch, fixesText, formatResolution, inspectLibTorchDir, type LibTorch,
} from './libtorch/discover.js';

/** The cmake-js release `build` fetches with `npm exec` when the package's own is absent (it is a devDependency). */
const CMAKE_JS = 'cmake-js@8.0.0';

/** cmake-js's CLI, from this package's dependencies (scripts/prebuild.ts drives the same one). */
export function cmakeJsBin(root: string): string | undefined {
  try {
    const pkgJson = createRequire(join(root, 'package.json')).resolve('cmake-js/package.json');
    const bin = (JSON.parse(readFileSync(pkgJson, 'utf8')) as { bin: Record<string, string> }).bin['cmake-js']!;
    return join(dirname(pkgJson), bin);
  } catch {
    return undefined;
  }
}

function onPath(names: string[], env: NodeJS.ProcessEnv): string | undefined {
  for (const name of names) {
    for (const dir of (env.PATH ?? '').split(delimiter)) {
      if (dir && existsSync(join(dir, name))) return join(dir, name);
    }
  }
  return undefined;
}

export interface BuildOptions {
  /** The LibTorch to build against (default: the one the search finds). */
  libtorch?: string;
}

/**
 * Compiles the addon; resolves with the exit code (0 built and loadable here).
 *
 * @example
 * process.exitCode = await buildAddon({ libtorch: '/opt/libtorch' });
 */
export async function buildAddon(options: BuildOptions = {}, io: { out?: (s: string) => void; err?: (s: string) => void; env?: NodeJS.ProcessEnv } = {}): Promise<number> {
  const out = io.out ?? ((s: string) => process.stdout.write(`${s}\n`));
  const err = io.err ?? ((s: string) => process.stderr.write(`${s}\n`));
  const env = io.env ?? process.env;

  let libtorch: LibTorch | undefined;
  if (options.libtorch) {
    try {
      libtorch = inspectLibTorchDir(options.libtorch, 'LIBTORCH');
    } catch (e) {
      err(`robust-synth build: --libtorch ${options.libtorch}: ${(e as Error).message}`);
      return 1;
    }
    if (!libtorch.cmakePrefix) {
      err(`robust-synth build: ${options.libtorch} has no CMake config (share/cmake/Torch), so nothing can be built against it`);
      return 1;
    }
  } else {
    const res = findLibTorch({ purpose: 'build', env });
    if (!res.chosen) {
      err(`robust-synth build: no LibTorch with headers and a CMake config to build against.\n\n${formatResolution(res)}\n\n${fixesText(env)}`);
      return 1;
    }
    libtorch = res.chosen;
  }

  const cmake = onPath(['cmake'], env);
  const cxx = env.CXX || onPath(['c++', 'g++', 'clang++'], env);
  if (!cmake || !cxx) {
    err(
      `robust-synth build: building from source needs ${[!cmake && 'cmake', !cxx && 'a C++17 compiler'].filter(Boolean).join(' and ')}, which this machine lacks.\n` +
        'Install them (Debian/Ubuntu: sudo apt-get install cmake g++), or use a LibTorch that a prebuilt binary matches (npx robust-synth setup --check lists them).',
    );
    return 1;
  }

  const root = packageRoot();
  const covered = listBinaries(root)
    .filter((b) => b.kind === 'prebuilt' && b.record)
    .map((b) => `${b.record!.torchVersion} ${b.record!.variant}`);
  out(`Building the native addon from source, as asked (robust-synth build), for ${describeLibTorch(libtorch)}.`);
  out(`Prebuilt binaries in this package cover LibTorch: ${covered.length ? covered.join(', ') : 'none'}. This takes a minute or two.`);

  const local = cmakeJsBin(root);
  const [cmd, pre] = local ? [process.execPath, [local]] : [onPath(['npm'], env) ?? 'npm', ['exec', '--yes', `--package=${CMAKE_JS}`, '--', 'cmake-js']];
  const args = [...pre, 'compile', '--directory', join(root, 'native'), '--out', join(root, 'build'), `--CDRS_VARIANT=${libtorch.variant}`];
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...env, LIBTORCH: libtorch.cmakePrefix ?? '' } });
  if (r.status !== 0) {
    err(`robust-synth build: the build failed (${r.error?.message ?? `exit ${r.status ?? r.signal}`}); its output is above.`);
    return 1;
  }
  out(`Built ${join(root, 'build', 'Release', 'robust_synth.node')}.`);
  const runtime = findLibTorch({ purpose: 'runtime', env });
  if (runtime.chosen) {
    const report = explainBinary(runtime.chosen, root);
    out(`At run time robust-synth uses ${describeLibTorch(runtime.chosen)}. ${report.text}`);
    return report.ok ? 0 : 1;
  }
  return 0;
}
