/**
 * Version comparison and the NVIDIA driver version, used to rank cached builds: a CUDA build goes
 * first only where a driver can run it, and setup picks its download from the same driver version.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Compares dotted versions numerically (550.54.14 > 550.9). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((x) => parseInt(x, 10) || 0);
  const pb = b.split('.').map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d) return Math.sign(d);
  }
  return 0;
}

/** The NVIDIA kernel driver's version, from /proc (no process) or else nvidia-smi; undefined without one. */
export function detectNvidiaDriver(): string | undefined {
  try {
    const m = /Kernel Module(?:\s+for\s+\S+)?\s+(\d+\.\d+(?:\.\d+)?)/.exec(readFileSync('/proc/driver/nvidia/version', 'utf8'));
    if (m) return m[1];
  } catch {
    // no driver loaded, or not Linux
  }
  const r = spawnSync('nvidia-smi', ['--query-gpu=driver_version', '--format=csv,noheader'], { encoding: 'utf8', timeout: 10_000 });
  const v = r.status === 0 ? /(\d+\.\d+(?:\.\d+)?)/.exec(r.stdout)?.[1] : undefined;
  return v;
}
