/**
 * `robust-synth setup`: report which LibTorch and binary would be used, and download the
 * official LibTorch only when none fits (or when asked). The report comes first because on most
 * machines that already have a LibTorch the right answer is "nothing to download".
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { describeKernelSettings, explainBinary, kernelCheckFor } from '../../binding/index.js';
import { BUILDS, DEFAULT_MIRROR, LIBTORCH_VERSION, PINNED_SHA256, libtorchUrl, pinnedShaForArchive } from './constants.js';
import {
  SOURCE_TITLE, defaultPythons, describeLibTorch, detectNvidiaDriver, findLibTorch, fixesText, formatResolution,
  noLibTorchMessage, libtorchCacheDir, type LibTorch,
} from './discover.js';
import { chooseBuild, installLibTorch } from './install.js';

const SETUP_HELP = `Usage: robust-synth setup [options]

Finds the LibTorch robust-synth will use and, when none fits, downloads the official LibTorch
${LIBTORCH_VERSION} (CPU, or the CUDA build your NVIDIA driver supports) into the cache.

  --check            print what would be used and why; change nothing
  --variant <v>      cpu | cuda | ${BUILDS.filter((b) => b !== 'cpu').join(' | ')}  (default: CUDA when a driver supports it, else cpu)
  --force            download even when a usable LibTorch is already found
  --archive <zip>    install from a LibTorch zip copied onto this machine (offline)
  --mirror <url>     download from a mirror of ${DEFAULT_MIRROR}
  --sha256 <hex>     the archive's expected sha256 (needed where none is pinned)
  --no-verify        install without a checksum (prints the sha256 it got)
  -h, --help         this text

Environment: LIBTORCH (use this LibTorch), ROBUST_SYNTH_CACHE (cache directory),
ROBUST_SYNTH_PYTHON (the Python whose torch to use), ROBUST_SYNTH_LIBTORCH_MIRROR (as --mirror).`;

interface BindingReport {
  ok: boolean;
  text: string;
}

/** What the loader would do with this LibTorch. A broken package is reported, not thrown: setup is how users diagnose one. */
function bindingReport(libtorch: LibTorch | undefined): BindingReport {
  if (!libtorch) return { ok: false, text: '' };
  try {
    return explainBinary(libtorch);
  } catch (e) {
    return { ok: false, text: `Binary: could not inspect the package's binaries (${(e as Error).message})` };
  }
}

/**
 * `robust-synth setup [--check] [--variant cpu|cuda] ...`; resolves with the exit code.
 *
 * @example
 * process.exitCode = await runSetupCommand(process.argv.slice(2));
 */
export async function runSetupCommand(argv: string[], io: { out?: (s: string) => void; err?: (s: string) => void; env?: NodeJS.ProcessEnv } = {}): Promise<number> {
  const out = io.out ?? ((s: string) => process.stdout.write(`${s}\n`));
  const err = io.err ?? ((s: string) => process.stderr.write(`${s}\n`));
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        check: { type: 'boolean' },
        variant: { type: 'string' },
        force: { type: 'boolean' },
        archive: { type: 'string' },
        mirror: { type: 'string' },
        sha256: { type: 'string' },
        'no-verify': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    err(`robust-synth setup: ${(e as Error).message}\n\n${SETUP_HELP}`);
    return 2;
  }
  if (args.help) {
    out(SETUP_HELP);
    return 0;
  }
  return runSetup(args, io);
}

/** The options of `robust-synth setup` (SETUP_HELP says what each does). */
export interface SetupOptions {
  check?: boolean;
  variant?: string;
  force?: boolean;
  archive?: string;
  mirror?: string;
  sha256?: string;
  'no-verify'?: boolean;
}

/** `robust-synth setup` with its options already read; resolves with the exit code. */
export async function runSetup(args: SetupOptions, io: { out?: (s: string) => void; err?: (s: string) => void; env?: NodeJS.ProcessEnv } = {}): Promise<number> {
  const out = io.out ?? ((s: string) => process.stdout.write(`${s}\n`));
  const err = io.err ?? ((s: string) => process.stderr.write(`${s}\n`));
  const env = io.env ?? process.env;
  const res = findLibTorch({ purpose: 'runtime', env, ...(args.check ? { pythons: defaultPythons(env) } : {}) });
  const report = bindingReport(res.chosen);
  if (args.check) {
    out(formatResolution(res));
    if (res.chosen) {
      out('');
      out(`Using: ${describeLibTorch(res.chosen)} (from ${SOURCE_TITLE[res.chosen.source]})`);
      if (res.chosen.libDir !== join(res.chosen.root, 'lib')) out(`       libraries in ${res.chosen.libDir}`);
      out(report.text);
      if (report.ok) {
        const k = kernelCheckFor(res.chosen, env);
        if (k) {
          out(`Kernel self-check: ${describeKernelSettings(k)}`);
          if (k.status !== 'passed' && k.status !== 'skipped') for (const a of k.attempts) out(`  - ${a}`);
        }
      }
      if (res.chosen.versionFrom !== 'build-version')
        out('Note: versions are compared as major.minor (Debian\'s 1.13.1 packages report 1.13.0, Python builds add suffixes).');
    } else {
      out('');
      out(res.error ? `Error: ${res.error}` : fixesText(env));
    }
    const driver = detectNvidiaDriver();
    const pick = chooseBuild(args.variant, driver);
    out(`\nsetup would download: ${pick.build ? `${libtorchUrl(pick.build, LIBTORCH_VERSION, args.mirror ?? env.ROBUST_SYNTH_LIBTORCH_MIRROR)} (${pick.why})` : `nothing (${pick.why})`}` +
      (res.chosen && report.ok && !args.force && !args.variant ? ', but it does not need to: the LibTorch above works' : ''));
    return res.chosen && report.ok ? 0 : 1;
  }

  if (res.error && !args.archive && !args.variant && !args.force) {
    err(noLibTorchMessage(res, env));
    return 1;
  }
  if (res.chosen && report.ok && !args.force && !args.variant && !args.archive) {
    out(`robust-synth is ready: ${describeLibTorch(res.chosen)} (from ${SOURCE_TITLE[res.chosen.source]}).`);
    out(report.text);
    out('Nothing to download (use --force or --variant to download the official LibTorch anyway).');
    return 0;
  }

  const driver = detectNvidiaDriver();
  const pick = chooseBuild(args.variant, driver);
  if (!pick.build) {
    err(`robust-synth setup: ${pick.why}`);
    return 2;
  }
  const mirror = args.mirror ?? env.ROBUST_SYNTH_LIBTORCH_MIRROR ?? DEFAULT_MIRROR;
  const url = libtorchUrl(pick.build, LIBTORCH_VERSION, mirror);
  // A mirror serves the same official files, so the pinned checksums hold for it too.
  const pinned = args.archive ? pinnedShaForArchive(args.archive) : (PINNED_SHA256[pick.build] ?? undefined);
  const sha256 = args['no-verify'] ? undefined : (args.sha256 ?? pinned);
  if (!args.archive) out(`Downloading LibTorch ${LIBTORCH_VERSION} (${pick.build}: ${pick.why}).`);
  try {
    const r = await installLibTorch({
      url,
      archive: args.archive,
      sha256,
      verify: !args['no-verify'],
      name: args.archive ? undefined : `${LIBTORCH_VERSION}-${pick.build}`,
      cacheDir: libtorchCacheDir(env),
      log: out,
    });
    out(r.alreadyInstalled ? `Already installed: ${r.dir}` : `Installed ${describeLibTorch(r.libtorch)} (sha256 ${r.sha256}, ${r.verifiedBy}).`);
    const after = bindingReport(r.libtorch);
    out(after.text);
    if (!after.ok) out('To use it now, compile the addon for it (needs cmake and a C++17 compiler): npx robust-synth build');
    return 0;
  } catch (e) {
    err(`robust-synth setup: ${(e as Error).message}`);
    if (res.chosen) {
      err(`\nThis machine already has ${describeLibTorch(res.chosen)}; robust-synth uses it.`);
      err(report.text);
    } else {
      err(`\n${formatResolution(res)}\n\n${fixesText(env)}`);
    }
    return 1;
  }
}
