/**
 * Loading LibTorch's libraries ahead of the addon, and probing a binary in a child process. The
 * probe exists because a CUDA LibTorch with a broken link or driver can abort the process that
 * loads it; in a child that costs a fallback instead of the app.
 */
import { spawnSync } from 'node:child_process';
import type { BuildInfo } from './types.js';

// RTLD_NOW | RTLD_NODELETE: Node dlcloses a library that is not an addon; NODELETE keeps it
// mapped, so the addon's NEEDED entries bind to it by soname.
export const PRELOAD_FLAGS = 0x2 | 0x1000;

export function preloadLibraries(paths: string[]): void {
  for (const p of paths) {
    try {
      process.dlopen({ exports: {} } as NodeJS.Module, p, PRELOAD_FLAGS);
    } catch (e) {
      if (!/did not self-register/.test((e as Error).message)) throw e;
    }
  }
}

export type ProbeResult = { ok: true; info: BuildInfo } | { ok: false; why: string };

/**
 * Loads `binary` in a child process and asks it for buildInfo(): a CUDA LibTorch with a broken
 * link or driver kills the child, not the caller.
 */
export function probeBinary(binary: string, preload: string[], timeoutMs = 120_000): ProbeResult {
  const script =
    'const [bin, preload, flags] = JSON.parse(process.argv[1]);' +
    'for (const p of preload) { try { process.dlopen({ exports: {} }, p, flags); } catch (e) { if (!/did not self-register/.test(e.message)) throw e; } }' +
    'const m = { exports: {} }; process.dlopen(m, bin);' +
    'process.stdout.write(JSON.stringify(m.exports.buildInfo()));';
  const r = spawnSync(process.execPath, ['-e', script, JSON.stringify([binary, preload, PRELOAD_FLAGS])], {
    encoding: 'utf8',
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error) return { ok: false, why: r.error.message };
  if (r.signal) return { ok: false, why: `the probe process died with ${r.signal}${r.stderr ? `: ${lastLine(r.stderr)}` : ''}` };
  if (r.status !== 0) return { ok: false, why: lastLine(r.stderr) || `the probe process exited with ${r.status}` };
  try {
    return { ok: true, info: JSON.parse(r.stdout) as BuildInfo };
  } catch {
    return { ok: false, why: `the probe printed something unexpected: ${r.stdout.slice(0, 200)}` };
  }
}

/** The error's own line in a child's stderr ("Error: ...: invalid ELF header"), else its last line. */
function lastLine(s: string): string {
  const lines = s.trim().split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => /^[\w.]*Error\b.*?: /.test(l)) ?? lines.filter((l) => !/^at |^Node\.js v|^[{}]/.test(l)).at(-1) ?? '';
}
