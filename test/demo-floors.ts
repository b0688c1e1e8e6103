// Floors for what the demo says about each panel (test/demo.test.ts), derived from the models'
// cards and the tasks' settings rather than copied from one model's run, so that they hold for
// a retrained model and fail for a run that did not work (images left as they started, a chance
// classifier, a unit not raised).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FASHION_28, type TaskName } from '../lib/tasks/common.js';

const ROOT = join(import.meta.dirname, '..');

export interface CardFigures {
  /** Clean test accuracy. */
  clean: number;
  /** Accuracy under an untargeted L2 attack, by radius. */
  attacked: Array<{ eps: number; accuracy: number }>;
}

/** The accuracy figures of a shipped model's card (models/NAME.json). */
export function cardFigures(model: string): CardFigures {
  const card = JSON.parse(readFileSync(join(ROOT, 'models', `${model}.json`), 'utf8')) as { accuracy?: Record<string, number> };
  const acc = card.accuracy ?? {};
  if (typeof acc.clean !== 'number') throw new Error(`models/${model}.json has no accuracy.clean`);
  const attacked = Object.entries(acc)
    .map(([k, v]) => ({ m: /^l2-([\d.]+)$/.exec(k), v }))
    .filter((e) => e.m)
    .map((e) => ({ eps: Number(e.m![1]), accuracy: e.v }))
    .sort((a, b) => a.eps - b.eps);
  return { clean: acc.clean, attacked };
}

/** Panels whose note counts images the model classifies as the class it was pushed toward. */
const CLASS_PANELS: Record<string, { task: TaskName; kind: 'targeted' | 'restore' | 'inversion' }> = {
  'Generation from uniform seeds': { task: 'generate', kind: 'targeted' },
  'Generation from univariate normal seeds': { task: 'generate', kind: 'targeted' },
  'Generation from multivariate normal seeds': { task: 'generate', kind: 'targeted' },
  'Image-to-image translation': { task: 'translate', kind: 'targeted' },
  'Sketch to image': { task: 'sketchToImage', kind: 'targeted' },
  Inpainting: { task: 'inpaint', kind: 'restore' },
  'Super-resolution (4x)': { task: 'superResolve', kind: 'restore' },
  'Representation inversion': { task: 'invert', kind: 'inversion' },
};

/**
 * The fewest of `n` images that must reach their class:
 * - restoration (the start is a degraded test image, pushed toward its true label): the card's
 *   clean accuracy less 0.2 (ten images: sampling);
 * - class-directed synthesis: more than half (chance is 1 in 10; 5 or more of 10 by chance is
 *   under 0.2 %), and, when the task's radius is at least an attack radius on the card, the share
 *   that attack already fools, less one image (a targeted attack at a larger radius does at least
 *   as well on a model that is not robust there);
 * - inversion (a representation matched, no class loss): more than half.
 */
export function classFloor(model: string, title: string, n: number): number {
  const p = CLASS_PANELS[title];
  if (!p) throw new Error(`no floor for the panel ${title}`);
  const card = cardFigures(model);
  const half = Math.ceil(n / 2);
  if (p.kind === 'restore') return Math.max(1, Math.floor(n * (card.clean - 0.2)));
  if (p.kind === 'inversion') return half;
  const eps = FASHION_28[p.task].eps;
  const within = card.attacked.filter((a) => a.eps <= eps);
  const fooled = within.length ? 1 - Math.min(...within.map((a) => a.accuracy)) : 0;
  return Math.max(half, Math.floor(n * fooled) - 1);
}

/** "7/10 classified as the target" -> [7, 10], every occurrence in a note. */
export function counts(note: string): Array<[number, number]> {
  return [...note.matchAll(/(\d+)\/(\d+)(?= classified as the target|;|$)/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

/**
 * What is wrong with the demo's notes, one line per problem (empty: all hold). `panels` is
 * gallery.json's list; `models` the model names the demo ran.
 */
export function checkDemoNotes(panels: Array<{ title: string; notes: Record<string, string> }>, models: string[]): string[] {
  const bad: string[] = [];
  for (const p of panels) {
    for (const m of models) {
      const note = p.notes[m] ?? '';
      if (CLASS_PANELS[p.title]) {
        const found = counts(note);
        if (!found.length) bad.push(`${p.title}, ${m}: no count in "${note}"`);
        for (const [hit, n] of found) {
          const floor = classFloor(m, p.title, n);
          if (hit < floor) bad.push(`${p.title}, ${m}: ${hit}/${n} reached the class, fewer than ${floor} ("${note}")`);
        }
        // Inversion: "relative representation distance 0.91 -> 0.12": the representations came closer.
        const d = /representation distance ([\d.]+) -> ([\d.]+)/.exec(note);
        if (p.title === 'Representation inversion' && !(d && Number(d[2]) < Number(d[1]))) bad.push(`${p.title}, ${m}: the representation did not come closer ("${note}")`);
      } else if (p.title === 'Feature visualization') {
        // "median unit value 1.23x its largest on real images (from 0.10x)": raised from the start.
        const v = /median unit value ([\d.]+)x .*\(from ([\d.]+)x\)/.exec(note);
        if (!v) bad.push(`${p.title}, ${m}: unreadable "${note}"`);
        else if (!(Number(v[1]) > Number(v[2]))) bad.push(`${p.title}, ${m}: the units were not raised ("${note}")`);
      } else if (p.title === 'Paint with features') {
        // "unit 4: median 0.10 -> 2.50 (its largest on real images: 3.00)": raised in the region.
        const v = /median (-?[\d.]+) -> (-?[\d.]+)/.exec(note);
        if (!v) bad.push(`${p.title}, ${m}: unreadable "${note}"`);
        else if (!(Number(v[2]) > Number(v[1]))) bad.push(`${p.title}, ${m}: the unit was not raised ("${note}")`);
      } else bad.push(`${p.title}: a panel without a floor`);
    }
  }
  return bad;
}
