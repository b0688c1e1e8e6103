/** Progress of a task on the command line: a bar on a terminal, plain lines elsewhere. */
import type { TaskProgress } from '../tasks/common.js';

export interface ProgressReporter {
  update: (p: TaskProgress) => void;
  done: () => void;
}

/** A progress bar on a terminal, plain lines (every 10 %) elsewhere. */
export function progressReporter(label: string, stream: NodeJS.WriteStream = process.stderr): ProgressReporter {
  const tty = stream.isTTY;
  let lastPct = -1;
  return {
    update(p) {
      const frac = p.images ? (p.done + (p.step / Math.max(1, p.total)) * p.inBatch) / p.images : 0;
      const pct = Math.min(100, Math.floor(Math.min(1, frac) * 100));
      if (tty) {
        const width = 30;
        const fill = Math.round((pct / 100) * width);
        stream.write(`\r${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${pct}% loss ${p.loss.toFixed(3)}`);
      } else if (pct >= lastPct + 10 || (pct === 100 && lastPct !== 100)) {
        lastPct = pct;
        stream.write(`${label}: ${pct}% (loss ${p.loss.toFixed(3)})\n`);
      }
    },
    done() {
      if (tty) stream.write('\n');
    },
  };
}
