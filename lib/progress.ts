/**
 * The one progress renderer of the command line and the library's long runs: a bar redrawn in
 * place on a terminal, plain lines elsewhere (every few percent, at a new phase, and at least
 * every 30 s), and durations for humans.
 */
import type { TaskProgress } from './tasks/common.js';

export interface ProgressLineOptions {
  stream?: NodeJS.WriteStream;
  /** Plain output: a line every this many percent (default 10). */
  everyPct?: number;
  /** Plain output: a line at least this often while updates come (default 30 s; 0: never by time). */
  everyMs?: number;
  /** Bar width in characters (default 30; 0: no bar, the text only). */
  width?: number;
}

export interface ProgressLine {
  /** Shows `pct` (0-100) and `text`. A new `phase` always gets a plain line. */
  update(pct: number, text: string, phase?: string): void;
  /** A message on its own line, without breaking the bar. */
  log(message: string): void;
  /** Ends the bar's line on a terminal. */
  done(): void;
}

/** `label [#####.....] 42% text` on a terminal; `label: 42% text` lines elsewhere. */
export function progressLine(label: string, o: ProgressLineOptions = {}): ProgressLine {
  const stream = o.stream ?? process.stderr;
  const tty = Boolean(stream.isTTY);
  const everyPct = o.everyPct ?? 10;
  const everyMs = o.everyMs ?? 30_000;
  const width = o.width ?? 30;
  let lastPct = -Infinity;
  let lastAt = 0;
  let lastPhase: string | undefined;
  let drawn = false;
  return {
    update(pct, text, phase) {
      const p = Math.max(0, Math.min(100, Math.floor(pct)));
      const tail = text ? ` ${text}` : '';
      if (tty) {
        const bar = width ? ` [${'#'.repeat(Math.round((p / 100) * width))}${'.'.repeat(width - Math.round((p / 100) * width))}]` : ':';
        stream.write(`\r\x1b[2K${label}${bar} ${p}%${tail}`);
        drawn = true;
        return;
      }
      const now = Date.now();
      const newPhase = phase !== undefined && phase !== lastPhase;
      if (newPhase || p >= lastPct + everyPct || (everyMs > 0 && lastAt && now - lastAt > everyMs) || (p === 100 && lastPct !== 100)) {
        lastPct = p;
        lastAt = now;
        lastPhase = phase ?? lastPhase;
        stream.write(`${label}: ${p}%${tail}\n`);
      }
    },
    log(message) {
      stream.write(`${tty && drawn ? '\r\x1b[2K' : ''}${message}\n`);
    },
    done() {
      if (tty && drawn) stream.write('\n');
      drawn = false;
    },
  };
}

/** Progress of a task (lib/tasks): `update` is its onProgress. */
export interface ProgressReporter {
  update: (p: TaskProgress) => void;
  done: () => void;
}

/** A task's progress: the share of image-steps done and the current loss. */
export function progressReporter(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  const line = progressLine(label, { stream, everyMs: 0 });
  return {
    update(p) {
      const frac = p.images ? (p.done + (p.step / Math.max(1, p.total)) * p.inBatch) / p.images : 0;
      line.update(Math.min(1, frac) * 100, `(loss ${p.loss.toFixed(3)})`);
    },
    done: () => line.done(),
  };
}

/** A duration for humans: "850 ms", "12 s", "3 min 20 s", "1 h 5 min". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) ms = 0;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
