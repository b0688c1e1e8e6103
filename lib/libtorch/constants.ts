/**
 * The LibTorch release `robust-synth setup` downloads, and how its archives are named and checked.
 * Kept apart from the code so a version bump is one file, and the runtime resolver (which ranks
 * cached downloads by this version) does not pull in the downloader to learn it.
 */
import { basename } from 'node:path';

/** The LibTorch release `setup` downloads. Prebuilt binaries for it must ship with the package. */
export const LIBTORCH_VERSION = '2.5.1';
export const DEFAULT_MIRROR = 'https://download.pytorch.org/libtorch';

/** Official builds of LIBTORCH_VERSION: `cpu` and CUDA builds named like PyTorch names them. */
export type Build = 'cpu' | 'cu118' | 'cu121' | 'cu124';
export const BUILDS: readonly Build[] = ['cpu', 'cu118', 'cu121', 'cu124'];

/**
 * sha256 of each official archive. Only values confirmed from independent sources are filled in;
 * null means "not pinned": setup then needs `--sha256`, or a `<archive>.sha256` file served beside
 * the archive by a mirror, or an explicit `--no-verify`.
 */
export const PINNED_SHA256: Record<Build, string | null> = {
  // libtorch-cxx11-abi-shared-with-deps-2.5.1+cpu.zip: the same value is pinned, and checked with
  // `sha256sum -c` / CMake URL_HASH, by WasmEdge's utils/wasi-nn/install-pytorch.sh and by
  // unrelated projects' FetchContent and build scripts.
  cpu: '618ca54eef82a1dca46ff1993d5807d9c0deb0bae147da4974166a147cb562fa',
  cu118: null, // TODO-verify: fill in from a trusted download (sha256sum) before relying on it.
  cu121: null, // TODO-verify
  cu124: null, // TODO-verify
};

/** Lowest NVIDIA driver each CUDA build runs on natively (CUDA release notes, "Toolkit and driver versions"). */
export const CUDA_MIN_DRIVER: ReadonlyArray<readonly [Build, string]> = [
  ['cu124', '550.54.14'],
  ['cu121', '530.30.02'],
  ['cu118', '520.61.05'],
];

/** `https://download.pytorch.org/libtorch/cu124/libtorch-cxx11-abi-shared-with-deps-2.5.1%2Bcu124.zip` */
export function libtorchUrl(build: Build, version = LIBTORCH_VERSION, mirror = DEFAULT_MIRROR): string {
  return `${mirror.replace(/\/+$/, '')}/${build}/libtorch-cxx11-abi-shared-with-deps-${version}%2B${build}.zip`;
}

/** The pinned sha256 of an official archive, recognised by its file name (for `--archive`). */
export function pinnedShaForArchive(file: string): string | undefined {
  const m = /libtorch-cxx11-abi-shared-with-deps-(\d+\.\d+\.\d+)(?:%2B|\+)(cpu|cu\d+)\.zip$/.exec(basename(file));
  if (!m || m[1] !== LIBTORCH_VERSION || !(BUILDS as readonly string[]).includes(m[2]!)) return undefined;
  return PINNED_SHA256[m[2] as Build] ?? undefined;
}
