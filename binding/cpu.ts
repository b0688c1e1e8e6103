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
  try {
    const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? [];
    if (['avx512f', 'avx512bw', 'avx512vl', 'avx512dq', 'fma'].every((f) => flags.includes(f))) {
      process.env.ATEN_CPU_CAPABILITY = 'avx512';
    }
  } catch {
    // no /proc/cpuinfo (not Linux): leave LibTorch's choice
  }
}
