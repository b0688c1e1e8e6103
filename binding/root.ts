/**
 * Where the package is installed. Binaries, models and the native sources are found relative to
 * it, and the same code runs from binding/ (tsx, tests) and from dist/binding/ (installed), so it
 * searches upward instead of assuming a depth.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The package root: the nearest directory above this file holding our package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'robust-synth') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error('robust-synth: cannot find the package root');
    dir = up;
  }
}
