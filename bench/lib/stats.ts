/** Medians and spreads of timings, and how the tables print them. */

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Half the min-max range, relative to the median. */
export function spread(xs: number[]): number {
  if (xs.length < 2) return 0;
  return (Math.max(...xs) - Math.min(...xs)) / 2 / median(xs);
}

export interface Summary {
  medianMs: number;
  spread: number;
  minMs: number;
  maxMs: number;
  n: number;
}

export function summarize(xs: number[]): Summary {
  return { medianMs: median(xs), spread: spread(xs), minMs: Math.min(...xs), maxMs: Math.max(...xs), n: xs.length };
}

export const f = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(d));
export const ms = (s: Summary | undefined): string => (s ? `${f(s.medianMs, s.medianMs < 10 ? 2 : 1)} ±${f(s.spread * 100, 0)}%` : '—');
export const ratio = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '—' : x.toFixed(3));
/** A median of per-round ratios, with their range when there are several rounds. */
export const pairedRatio = (x: number | undefined, rounds: number[]) =>
  ratio(x) + (x !== undefined && rounds.length > 1 ? ` (${Math.min(...rounds).toFixed(2)}–${Math.max(...rounds).toFixed(2)})` : '');
export const shortBlas = (paths: string[] | undefined) =>
  !paths?.length ? '?' : paths.some((p) => /openblas/.test(p)) ? 'OpenBLAS' : paths.some((p) => /\/blas\//.test(p)) ? 'reference BLAS' : paths.map((p) => p.split('/').pop()).join(', ');

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
