/**
 * The study's resumable unit: a part (one task, one model, or the baselines of a task) writes its
 * PNGs into OUT/parts/NAME/ and then, atomically and last, OUT/parts/NAME.json with the settings
 * it ran with. A rerun skips a part whose file exists, whose settings match and whose PNGs are
 * all there.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../images.js';

export interface PartRecord {
  format: 'robust-synth-study-part/1';
  name: string;
  /** Everything the part's results depend on; a rerun with another key runs the part again. */
  key: unknown;
  /** Wall-clock seconds the part took (synthesis, judging, metrics, PNGs). */
  seconds: number;
  /** PGD image-steps it ran (images x iterations). */
  steps: number;
  /** Its lines in the report's tables. */
  rows: Array<Record<string, unknown>>;
  /** One entry per image, with the PNGs' paths relative to the output directory. */
  items: Array<Record<string, unknown>>;
  /** Every PNG it wrote, relative to the output directory. */
  files: string[];
}

/** JSON with object keys sorted at every level: equal keys compare equal whatever their order. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .sort()
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

export class PartStore {
  readonly dir: string;
  constructor(readonly out: string) {
    this.dir = join(out, 'parts');
  }

  file(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  /** The part's record when it finished earlier with the same key and its PNGs are all there. */
  finished(name: string, key: unknown): PartRecord | undefined {
    const f = this.file(name);
    if (!existsSync(f)) return undefined;
    try {
      const r = JSON.parse(readFileSync(f, 'utf8')) as PartRecord;
      if (r.format !== 'robust-synth-study-part/1' || stableJson(r.key) !== stableJson(key)) return undefined;
      if (!r.files.every((p) => existsSync(join(this.out, p)))) return undefined;
      return r;
    } catch {
      return undefined; // unreadable: run it again
    }
  }

  /** Why a part must run: no file, other settings, or missing images. */
  whyRun(name: string, key: unknown): string {
    const f = this.file(name);
    if (!existsSync(f)) return 'not run yet';
    try {
      const r = JSON.parse(readFileSync(f, 'utf8')) as PartRecord;
      if (stableJson(r.key) !== stableJson(key)) return 'its settings changed';
      return 'some of its images are missing';
    } catch {
      return 'its record is unreadable';
    }
  }

  /** An empty directory for the part's PNGs (what a killed run left there is removed). */
  begin(name: string): string {
    const d = join(this.dir, name);
    rmSync(d, { recursive: true, force: true });
    mkdirSync(d, { recursive: true });
    // Temp files of a killed run elsewhere in parts/.
    for (const f of readdirSync(this.dir)) if (f.endsWith('.partial')) rmSync(join(this.dir, f), { force: true });
    return d;
  }

  save(record: PartRecord): void {
    writeFileAtomic(this.file(record.name), JSON.stringify(record, null, 1) + '\n');
  }
}
