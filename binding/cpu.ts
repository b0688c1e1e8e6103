/** CPU settings LibTorch reads once, when it starts: the loader applies them before it loads LibTorch. */
import { readFileSync } from 'node:fs';

/**
 * LibTorch 1.13 runs ATen's AVX2 kernels even where its AVX-512 ones would run; those were
 * measured 20-30 % faster on batched Fashion-MNIST steps and level on ResNet50 (bench/README.md).
 * ATen reads ATEN_CPU_CAPABILITY once, at its first kernel, so this is set before LibTorch
 * loads, and only where the CPU has the AVX-512 subsets ATen needs and the user chose nothing.
 */
export function preferAvx512Kernels(): void {
  if (process.env.ATEN_CPU_CAPABILITY !== undefined || process.arch !== 'x64') return;
  const flags = cpuFlags();
  if (['avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'fma'].every((f) => flags.includes(f))) {
    process.env.ATEN_CPU_CAPABILITY = 'avx512';
  }
}

let flagsRead: string[] | undefined;

/** The CPU's feature flags from /proc/cpuinfo (none where there is no such file: not Linux). */
export function cpuFlags(): string[] {
  if (!flagsRead) {
    try {
      flagsRead = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim().split(/\s+/) ?? [];
    } catch {
      flagsRead = [];
    }
  }
  return flagsRead;
}

/**
 * Whether the CPU computes bf16 dot products natively (AVX512_BF16 or AMX): there bf16 autocast
 * ran the study's ResNet50 steps 1.8x (AMD Zen 4) to 2.2-3x (Intel AMX) faster than fp32
 * (bench/README.md); elsewhere bf16 is emulated and slower.
 */
export function cpuHasBf16(): boolean {
  const f = cpuFlags();
  return f.includes('avx512_bf16') || f.includes('amx_bf16');
}
