/**
 * The addon's raw typed surface, as native/src exports it. Plain types with no runtime code, so
 * lib/ can name them without loading anything; lib/ wraps them with validation, errors and the
 * public API.
 */

export interface RawTensor {
  data: Buffer;
  shape: number[];
  dtype: 'float32' | 'int32';
}

export interface RawJob<T> {
  promise: Promise<T>;
  cancel(): void;
}

export interface RawPgdOptions {
  x0: { data: Float32Array; shape: number[] };
  targets: Int32Array;
  constraint: '2' | 'inf' | 'unconstrained';
  eps: number;
  step: number;
  iterations: number;
  useBest: boolean;
  randomStart: boolean;
  seed: number;
  targeted: boolean;
  bf16: boolean;
  penaltyWeight: number;
  mask?: { data: Float32Array; shape: number[] };
  reference?: { data: Float32Array; shape: number[] };
  featureIndex?: number;
  featureWeight?: number;
  progressEvery: number;
}

export interface RawProgress {
  step: number;
  total: number;
  loss: number;
  elapsedMs: number;
}

export interface RawPgdResult {
  images: RawTensor;
  losses: RawTensor;
  predictions: RawTensor;
  stats: { ms: number; steps: number };
}

export interface RawSession {
  step(): RawJob<RawTensor>;
  /** The current iterate, [n, c, h, w] float32 on the CPU. */
  current(): RawJob<RawTensor>;
  /** Lets go of the run and of its model reference, then lets its later calls fail. */
  finish(): RawJob<RawPgdResult>;
  /** Frees the run and the model reference on the compute thread; idempotent. Later calls throw ERR_DISPOSED. */
  dispose(): RawJob<void>;
}

export interface RawModel {
  info(): { numClasses: number; device: string; hasFeatures: boolean; channelsLast: boolean; frozen: boolean; inputShape: [number, number, number] };
  logits(x: { data: Float32Array; shape: number[] }): RawJob<RawTensor>;
  features(x: { data: Float32Array; shape: number[] }): RawJob<RawTensor>;
  pgd(options: RawPgdOptions, onProgress?: (p: RawProgress) => void): RawJob<RawPgdResult>;
  createSession(options: RawPgdOptions): RawJob<RawSession>;
  floor(x: { data: Float32Array; shape: number[] }, targets: Int32Array, reps: number, bf16: boolean): RawJob<number[]>;
  dispose(): RawJob<void>;
}

export interface BuildInfo {
  torchVersion: string;
  cudaAvailable: boolean;
  variant: 'cpu' | 'cuda';
  defaultThreads: number;
  parallelInfo: string;
  /** at::show_config(): compiler, oneDNN version, CPU capability, BLAS. */
  config: string;
  mkldnn: boolean;
}

export interface RawLoadConfig {
  channelsLast: boolean;
  freeze: boolean;
  /** Throw when freezing fails (else the module runs unfrozen). */
  freezeStrict: boolean;
  /** No shape known (no option, no card): probe common shapes, ignoring `inputShape`. */
  inferShape?: boolean;
}

export type JitExecutor = 'profiling' | 'simple' | 'legacy';

export interface NativeBinding {
  load(path: string, device: string, inputShape: number[], config?: RawLoadConfig): RawJob<RawModel>;
  /** n >= 1: a fixed count; 0: adaptive. */
  setThreads(n: number): void;
  getThreads(): number;
  threadPolicy(): { mode: 'auto' | 'fixed'; current: number; max: number };
  /** The adaptive rule, for tests: allowed cores minus other processes' busy cores, rounded, >= 1. */
  threadsForLoad(allowed: number, otherBusyCores: number): number;
  setJitExecutor(mode: JitExecutor): void;
  getJitExecutor(): JitExecutor;
  /** Process-wide: oneDNN convolutions on (default) or off. For benchmarks. */
  setMkldnn(enabled: boolean): void;
  buildInfo(): BuildInfo;
  /** Live CPU tensor allocations; counted only when ROBUST_SYNTH_COUNT_TENSORS=1 was set before the addon loaded (leak tests). */
  tensorStats(): { counting: boolean; allocations: number; bytes: number };
  /** TorchScript's TensorExpr fuser, process-wide (the kernel self-check turns it off where it hangs). Absent in binaries older than the check. */
  setTensorExprFuser?(enabled: boolean): void;
  getTensorExprFuser?(): boolean;
  /** The kernel self-check's convolution cases (kernel-check.ts runs them in a child process). */
  kernelCheckCases?(): number;
  kernelCheckRun?(i: number, channelsLast: boolean): { name: string; forward: number; gradient: number };
  /** Aborts every job and waits until no compute thread is inside one; for process exit only (irreversible). */
  stopJobsForExit(): void;
}
