/**
 * Downloading, verifying and unpacking the official LibTorch into the download cache, for
 * `robust-synth setup`. Nothing here runs at install time: npm 11 blocks dependencies' install
 * scripts, so setup is an explicit command.
 *
 * temp file -> verify -> unpack into a temp dir -> one rename, so an interrupted run never leaves
 * a half-unpacked tree where the resolver looks.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { basename, join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RobustSynthError } from '../errors.js';
import { BUILDS, CUDA_MIN_DRIVER, LIBTORCH_VERSION, type Build } from './constants.js';
import { compareVersions, inspectLibTorchDir, libtorchCacheDir, type LibTorch } from './discover.js';
import { extractZip } from './zip.js';

// ---------------------------------------------------------------------------------------------
// Which build to download

/** The newest CUDA build the driver runs, or undefined when it is too old (or there is none). */
export function cudaBuildForDriver(driver: string | undefined | null): Build | undefined {
  if (!driver) return undefined;
  for (const [build, min] of CUDA_MIN_DRIVER) if (compareVersions(driver, min) >= 0) return build;
  return undefined;
}

/** Which build `setup` downloads: `--variant` wins; otherwise CUDA when the driver supports one. */
export function chooseBuild(variant: string | undefined, driver: string | undefined | null): { build?: Build; why: string } {
  if (variant === undefined || variant === 'auto') {
    const cuda = cudaBuildForDriver(driver);
    if (cuda) return { build: cuda, why: `NVIDIA driver ${driver} supports ${cuda}` };
    return { build: 'cpu', why: driver ? `NVIDIA driver ${driver} is older than any CUDA build of ${LIBTORCH_VERSION} supports` : 'no NVIDIA driver found' };
  }
  if (variant === 'cpu') return { build: 'cpu', why: '--variant cpu' };
  if (variant === 'cuda') {
    const cuda = cudaBuildForDriver(driver);
    if (cuda) return { build: cuda, why: `--variant cuda; NVIDIA driver ${driver} supports ${cuda}` };
    return {
      why: driver
        ? `--variant cuda, but NVIDIA driver ${driver} is older than ${CUDA_MIN_DRIVER.at(-1)![1]}, the oldest any CUDA build of LibTorch ${LIBTORCH_VERSION} needs`
        : '--variant cuda, but no NVIDIA driver was found (/proc/driver/nvidia/version, nvidia-smi); name a build to download one anyway: --variant cu124',
    };
  }
  if ((BUILDS as readonly string[]).includes(variant)) return { build: variant as Build, why: `--variant ${variant}` };
  return { why: `unknown --variant '${variant}': expected cpu, cuda, ${BUILDS.filter((b) => b !== 'cpu').join(', ')}` };
}

/** Cache entry name of an unpacked LibTorch: '2.5.1-cpu', '2.5.1-cu124'. */
export function cacheName(t: Pick<LibTorch, 'version' | 'variant' | 'cuda'>): string {
  const [v, tag] = t.version.split('+');
  return `${v}-${tag ?? (t.variant === 'cuda' ? `cu${(t.cuda ?? '').replace('.', '')}` : 'cpu')}`;
}

// ---------------------------------------------------------------------------------------------
// Downloading, verifying, unpacking

export interface InstallOptions {
  /** Where the archive is: an http(s) URL. Ignored when `archive` is given. */
  url?: string;
  /** A local archive, for offline machines. */
  archive?: string;
  /** Expected sha256 (hex). When absent, `${url}.sha256` is tried, then `verify: false` is required. */
  sha256?: string | null;
  /** false: skip verification (the computed sha256 is still reported). Default true. */
  verify?: boolean;
  /** The cache entry name ('<version>-<build>'); for archives it defaults to what the archive holds. */
  name?: string;
  /** The libtorch cache directory (default ~/.cache/robust-synth/libtorch). */
  cacheDir?: string;
  log?: (line: string) => void;
  /** Stalled-connection timeout in ms (default 60 s). */
  timeoutMs?: number;
}

export interface InstallResult {
  dir: string;
  sha256: string;
  /** 'pinned' | 'option' | 'sidecar <url>' | 'not verified' | 'already installed' */
  verifiedBy: string;
  libtorch: LibTorch;
  alreadyInstalled: boolean;
}

function setupError(message: string): RobustSynthError {
  return new RobustSynthError('ERR_LIBTORCH', message);
}

function request(url: string, timeoutMs: number, redirects = 5): Promise<IncomingMessage> {
  return new Promise((resolvePromise, reject) => {
    const get = url.startsWith('https:') ? httpsGet : url.startsWith('http:') ? httpGet : undefined;
    if (!get) return reject(setupError(`unsupported URL ${url}: use http(s), or --archive for a local file`));
    const req = get(url, { headers: { 'user-agent': 'robust-synth-setup' } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects <= 0) return reject(setupError(`too many redirects fetching ${url}`));
        return resolvePromise(request(new URL(res.headers.location, url).toString(), timeoutMs, redirects - 1));
      }
      if (status !== 200) {
        res.resume();
        return reject(Object.assign(setupError(`${url} answered HTTP ${status}`), { status }));
      }
      resolvePromise(res);
    });
    req.setTimeout(timeoutMs, () => req.destroy(setupError(`no data from ${url} for ${timeoutMs / 1000} s`)));
    req.on('error', reject);
  });
}

/** Fetches `<url>.sha256` (a mirror may serve one); undefined when there is none. */
export async function fetchSidecarSha256(url: string, timeoutMs = 30_000): Promise<string | undefined> {
  let res: IncomingMessage;
  try {
    res = await request(`${url}.sha256`, timeoutMs);
  } catch (e) {
    if ((e as { status?: number }).status) return undefined; // 404 and friends: no sidecar
    throw e;
  }
  let text = '';
  for await (const chunk of res) {
    text += String(chunk);
    if (text.length > 4096) break;
  }
  res.destroy();
  return /\b([0-9a-f]{64})\b/i.exec(text)?.[1]?.toLowerCase();
}

/** Streams `url` into `dest`, returning its sha256. Throws (leaving `dest` to the caller) when the body ends early. */
export async function downloadTo(url: string, dest: string, options: { timeoutMs?: number; log?: (s: string) => void } = {}): Promise<string> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  let res: IncomingMessage;
  try {
    res = await request(url, timeoutMs);
  } catch (e) {
    if (e instanceof RobustSynthError) throw e;
    throw setupError(`could not download ${url}: ${(e as Error).message} (is this machine offline?)`);
  }
  const total = Number(res.headers['content-length'] ?? 0);
  const hash = createHash('sha256');
  let received = 0;
  let nextReport = 0.1;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      received += chunk.length;
      if (total && options.log && received / total >= nextReport) {
        options.log(`  ${Math.floor((received / total) * 100)}% of ${(total / 1e6).toFixed(0)} MB`);
        nextReport += 0.1;
      }
      cb(null, chunk);
    },
  });
  res.socket?.setTimeout(timeoutMs, () => res.destroy(setupError(`download of ${url} stalled for ${timeoutMs / 1000} s`)));
  try {
    await pipeline(res, meter, createWriteStream(dest));
  } catch (e) {
    throw setupError(`download of ${url} failed after ${received} bytes: ${(e as Error).message}`);
  }
  // A server that closes the connection early can end the stream without an error.
  if (!res.complete || (total && received !== total)) {
    throw setupError(`download of ${url} was cut off: got ${received} of ${total || 'unknown'} bytes`);
  }
  return hash.digest('hex');
}

async function sha256OfFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * Downloads (or takes a local archive), verifies and unpacks a LibTorch into the cache. Nothing
 * appears under its final name until the archive is verified and fully unpacked: the last step
 * is one rename, so an interrupted run leaves only dot-named temp files, which the resolver ignores.
 */
export async function installLibTorch(options: InstallOptions): Promise<InstallResult> {
  const log = options.log ?? (() => {});
  const cacheDir = options.cacheDir ?? libtorchCacheDir();
  if (!options.name && !options.archive) throw setupError('installLibTorch: a download needs a cache entry name');
  if (options.name && existsSync(join(cacheDir, options.name))) {
    const dir = join(cacheDir, options.name);
    return { dir, sha256: '', verifiedBy: 'already installed', libtorch: inspectLibTorchDir(dir, 'cache'), alreadyInstalled: true };
  }
  mkdirSync(cacheDir, { recursive: true });
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const partial = join(cacheDir, `.download.${tag}.zip.part`);
  const staging = join(cacheDir, `.unpacking.${tag}`);
  const verify = options.verify ?? true;
  try {
    // The expected checksum is settled before the big download, so a refusal costs nothing.
    let expected = options.sha256?.toLowerCase() ?? undefined;
    let verifiedBy = expected ? 'pinned' : '';
    if (!expected && verify && options.url && !options.archive) {
      expected = await fetchSidecarSha256(options.url, options.timeoutMs);
      if (expected) verifiedBy = `sidecar ${options.url}.sha256`;
    }
    if (!expected && verify) {
      throw setupError(
        `no sha256 is pinned for ${options.name ?? basename(options.archive ?? '')} and none is published beside the archive, so it cannot be verified. ` +
          'Pass the checksum you trust with --sha256 <hex>, or --no-verify to install it unverified (its sha256 is printed).',
      );
    }
    if (expected && !/^[0-9a-f]{64}$/.test(expected)) throw setupError(`--sha256 must be 64 hex digits, got '${expected}'`);

    let archive: string;
    let actual: string;
    if (options.archive) {
      archive = resolve(options.archive);
      log(`Hashing ${archive}`);
      actual = await sha256OfFile(archive);
    } else {
      if (!options.url) throw setupError('nothing to install: give a URL or an archive');
      log(`Downloading ${options.url}`);
      actual = await downloadTo(options.url, partial, { timeoutMs: options.timeoutMs, log });
      archive = partial;
    }
    if (expected && actual !== expected) {
      throw setupError(
        `checksum mismatch for ${options.archive ?? options.url}: expected sha256 ${expected}, got ${actual}. ` +
          'The file is corrupt or not the official archive; nothing was installed.',
      );
    }
    if (!expected) {
      verifiedBy = 'not verified';
      log(`Not verified (--no-verify); its sha256 is ${actual}`);
    }

    log('Unpacking');
    mkdirSync(staging);
    await extractZip(archive, staging);
    // Official archives hold one top-level libtorch/ directory.
    const top = readdirSync(staging);
    const root = top.length === 1 && statSync(join(staging, top[0]!)).isDirectory() ? join(staging, top[0]!) : staging;
    let unpacked: LibTorch;
    try {
      unpacked = inspectLibTorchDir(root, 'cache');
    } catch (e) {
      throw setupError(`${options.archive ?? options.url} is not a LibTorch archive: ${(e as Error).message}`);
    }
    const dest = join(cacheDir, options.name ?? cacheName(unpacked));
    writeFileSync(
      join(root, 'robust-synth-install.json'),
      JSON.stringify({ source: options.archive ? `file ${archive}` : options.url, sha256: actual, verifiedBy, installedAt: new Date().toISOString() }, null, 2),
    );
    try {
      renameSync(root, dest);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // Another setup finished first: keep its copy.
      if (!((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(dest))) throw e;
    }
    return { dir: dest, sha256: actual, verifiedBy, libtorch: inspectLibTorchDir(dest, 'cache'), alreadyInstalled: false };
  } finally {
    rmSync(partial, { force: true });
    rmSync(staging, { recursive: true, force: true });
  }
}
