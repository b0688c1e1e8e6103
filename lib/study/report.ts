/** The study's report: report.json (everything); report-render.ts writes report.md and report.html from it. */
import { relative } from 'node:path';
import type { Hole } from '../tasks/inpaint.js';
import { studyReference, type StudyConfig } from './config.js';
import type { ImagenetteFolder, SeedsInfo } from './data.js';
import type { ModelIdentity, Role } from './models.js';
import type { PartRecord } from './parts/store.js';

export interface GridCell {
  src: string;
  caption: string;
  /** For a synthesized image: does its judge see the class it should? */
  ok?: boolean;
}

export interface Grid {
  title: string;
  caption: string;
  columns: string[];
  rows: Array<{ label: string; cells: Array<GridCell | null> }>;
}

export interface Section {
  title: string;
  /** What the table measures and how to read the grids. */
  note: string;
  rows: Array<Record<string, unknown>>;
  grids: Grid[];
}

export const SECTION_KEYS = ['generate', 'compare', 'inpaint', 'superResolve', 'translate'] as const;
export type SectionKey = (typeof SECTION_KEYS)[number];

export interface StudyReport {
  format: 'robust-synth-study/1';
  generatedAt: string;
  mode: 'quick' | 'full';
  seconds: number;
  /** Device, threads, batch, dtype and LibTorch of the parts this run computed, in words. */
  compute: string;
  models: Partial<Record<Role, ModelIdentity>>;
  judging: { mode: 'judge' | 'cross'; note: string };
  /** How predictions are made (the 10 Imagenette logits of the 1000-class head). */
  restriction: string;
  data: {
    root: string;
    layout: ImagenetteFolder['layout'];
    note: string;
    ignored: string[];
    classes: Array<{ wnid: string; index: number; name: string; train: number; val: number }>;
  };
  seeds: SeedsInfo | null;
  config: {
    quick: boolean;
    /** Everything that differs from the reference run (empty for it). */
    reductions: string[];
    settings: StudyConfig['settings'];
    reference: StudyConfig['settings'];
    generatePerClass: number;
    restorePerClass: number;
    translatePerClass: number;
    translateTo: StudyConfig['translateTo'];
    seedImagesPerClass: number | 'all';
    seedFactor: number;
    srFactor: number;
    hole: Hole;
    randomSeed: number;
  };
  sections: Record<SectionKey, Section>;
  notes: string[];
  parts: Array<{ name: string; status: 'ran' | 'skipped'; seconds: number; steps: number }>;
}

export interface ReportInput {
  out: string;
  mode: 'quick' | 'full';
  cfg: StudyConfig;
  data: ImagenetteFolder;
  ids: Partial<Record<Role, ModelIdentity>>;
  judging: 'judge' | 'cross';
  seeds: SeedsInfo | null;
  seedsFile: string;
  records: Map<string, PartRecord>;
  parts: StudyReport['parts'];
  valNotes: string[];
  hole: Hole;
  /** Device, threads, batch, dtype and LibTorch, in words. */
  compute: string;
  seconds: number;
}

const SHOW_PER_CLASS = 4;

type Item = Record<string, any>;

export function buildReport(r: ReportInput): StudyReport {
  const rec = (name: string) => r.records.get(name);
  const items = (name: string): Item[] => (rec(name)?.items ?? []) as Item[];
  const rows = (names: string[]) => names.flatMap((n) => rec(n)?.rows ?? []);
  const cross = r.judging === 'cross';
  const judgeNote = cross
    ? `No --judge was given: each model judges the other's images (the standard model judges the robust model's, the robust model the standard model's), ` +
      `and the baselines are judged by both. A judge never judges its own images; "self" columns are each model's verdict on its own.`
    : `Every image is judged by a third classifier, ${r.ids.judge!.name} (--judge), which never synthesizes.`;
  const judgeCaption = (it: Item, key = 'judge') => `judge: ${it[key]}`;

  // --- generation grids: one per part, each row a class (seed, then what PGD made of it).
  const genParts: Array<[string, string]> = [
    ['generate-robust-uniform', 'Robust, uniform seeds'],
    ['generate-robust-normal', 'Robust, univariate-normal seeds'],
    ['generate-robust-mvn', 'Robust, multivariate-normal seeds'],
    ['generate-standard-mvn', 'Standard, multivariate-normal seeds'],
  ];
  const byClass = (list: Item[], key = 'class') => {
    const m = new Map<string, Item[]>();
    for (const it of list) m.set(it[key], [...(m.get(it[key]) ?? []), it]);
    return m;
  };
  const show = Math.min(SHOW_PER_CLASS, r.cfg.generatePerClass);
  const genGrids: Grid[] = genParts
    .filter(([name]) => rec(name))
    .map(([name, title]) => ({
      title,
      caption: 'Each row a class: a seed, then what PGD made of it, in pairs. Under each image, what its judge sees (over the 10 Imagenette classes).',
      columns: Array.from({ length: show }, () => ['seed', 'generated']).flat(),
      rows: [...byClass(items(name)).entries()].map(([cls, list]) => ({
        label: cls,
        cells: list.slice(0, show).flatMap((it) => [
          { src: it.seed, caption: `seed; judge: ${it.seedJudge}`, ok: it.seedJudge === cls },
          { src: it.file, caption: `${judgeCaption(it)}; self: ${it.self}`, ok: it.judge === cls },
        ]),
      })),
    }));

  // --- robust and standard side by side, from the very same seeds.
  const rm = items('generate-robust-mvn');
  const sm = items('generate-standard-mvn');
  const compareGrid: Grid = {
    title: 'Robust and standard, side by side, from the same multivariate-normal seeds',
    caption: 'Each row: a seed, what the robust model made of it, what the standard model made of it (same target, same settings).',
    columns: ['seed', 'robust', 'standard'],
    rows: [...byClass(rm).entries()].flatMap(([cls, list]) =>
      list.slice(0, Math.min(2, show)).map((it) => {
        const twin = sm.find((s) => s.seed.split('/').pop() === it.seed.split('/').pop());
        return {
          label: cls,
          cells: [
            { src: it.seed, caption: 'seed' },
            { src: it.file, caption: judgeCaption(it), ok: it.judge === cls },
            twin ? { src: twin.file, caption: judgeCaption(twin), ok: twin.judge === cls } : null,
          ],
        };
      }),
    ),
  };

  // --- restoration grids: original, baselines, robust, standard.
  const restoreGrid = (task: 'inpaint' | 'super-resolve', title: string, baselines: Array<[string, string]>): Grid => {
    const base = items(`${task}-baselines`);
    const rob = items(`${task}-robust`);
    const std = items(`${task}-standard`);
    const judged = (m: Record<string, string> | undefined) => (m ? Object.entries(m).map(([role, v]) => (cross ? `${role}: ${v}` : `judge: ${v}`)).join(', ') : '');
    return {
      title,
      caption:
        task === 'inpaint'
          ? `Each row a validation image: the original, the ${r.hole.width}x${r.hole.height} hole filled with the known pixels' mean (where PGD starts), a diffusion fill, the robust model's fill, the standard model's.`
          : `Each row a validation image: the original, its ${r.cfg.srFactor}x block average shown with nearest-neighbour upsampling (where PGD starts), bicubic upsampling, the robust model's result, the standard model's.`,
      columns: ['original', ...baselines.map(([, label]) => label), 'robust', 'standard'],
      rows: base.map((b, i) => ({
        label: b.class,
        cells: [
          { src: b.original, caption: b.class },
          ...baselines.map(([key]) => ({ src: b[key], caption: judged(b[`${key}Judge`]) })),
          rob[i] ? { src: rob[i]!.file, caption: judgeCaption(rob[i]!), ok: rob[i]!.judge === b.class } : null,
          std[i] ? { src: std[i]!.file, caption: judgeCaption(std[i]!), ok: std[i]!.judge === b.class } : null,
        ],
      })),
    };
  };

  const tr = items('translate-robust');
  const ts = items('translate-standard');
  const translateGrid: Grid = {
    title: 'Translation between Imagenette classes',
    caption: 'Each row: a validation image of one class, turned toward another by the robust model and by the standard model.',
    columns: ['source', 'robust', 'standard'],
    rows: tr.map((it, p) => ({
      label: `${it.from} → ${it.to}`,
      cells: [
        { src: it.sourceImage, caption: it.from },
        { src: it.file, caption: judgeCaption(it), ok: it.judge === it.to },
        ts[p] ? { src: ts[p]!.file, caption: judgeCaption(ts[p]!), ok: ts[p]!.judge === it.to } : null,
      ],
    })),
  };

  const notes: string[] = [...r.valNotes];
  if (r.cfg.generatePerClass < 2) notes.push('Diversity (mean pairwise L2 distance within a class) needs two images per class: not reported in this run.');
  notes.push(
    "Fréchet distances (as `eval` reports at 28x28) are not reported: with this few images per class, a covariance in the judge's 2048-d feature space cannot be estimated.",
  );
  if (r.data.classes.length < 2) notes.push('Translation needs two classes: not run.');
  for (const role of ['robust', 'standard'] as const) {
    const id = r.ids[role]!;
    if (id.robust !== undefined && id.robust !== (role === 'robust')) notes.push(`The model card of --${role} (${id.name}) says robust: ${id.robust}; check that the two models are not swapped.`);
  }

  return {
    format: 'robust-synth-study/1',
    generatedAt: new Date().toISOString(),
    mode: r.mode,
    seconds: r.seconds,
    compute: r.compute,
    models: r.ids,
    judging: { mode: r.judging, note: judgeNote },
    restriction:
      'Both classifiers have the 1000-class ImageNet head. Every task targets the ImageNet index of an Imagenette class (its loss is the cross-entropy over all 1000 logits, as in the study); ' +
      'every prediction (judge, self, seed alone) is the argmax over the 10 Imagenette logits only, and a confidence is the softmax over those 10.',
    data: {
      root: r.data.root,
      layout: r.data.layout,
      note: r.data.note,
      ignored: r.data.ignored,
      classes: r.data.classes.map((c) => ({ wnid: c.wnid, index: c.index, name: c.name, train: c.train.length, val: c.val.length })),
    },
    seeds: r.seeds ? { ...r.seeds, file: relative(r.out, r.seeds.file) || r.seeds.file } : null,
    config: {
      quick: r.mode === 'quick',
      reductions: r.cfg.reductions,
      settings: r.cfg.settings,
      reference: studyReference(),
      generatePerClass: r.cfg.generatePerClass,
      restorePerClass: r.cfg.restorePerClass,
      translatePerClass: r.cfg.translatePerClass,
      translateTo: r.cfg.translateTo,
      seedImagesPerClass: r.cfg.seedImagesPerClass ?? 'all',
      seedFactor: r.cfg.seedFactor,
      srFactor: r.cfg.srFactor,
      hole: r.hole,
      randomSeed: r.cfg.randomSeed,
    },
    sections: {
      generate: {
        title: 'Generation from three seed distributions',
        note:
          'The robust model generates from uniform, univariate-normal and multivariate-normal seeds; the standard model from the multivariate-normal ones. ' +
          '"seed alone" is the judge on the seeds themselves (the seed-only baseline); "gain" is what PGD added.',
        rows: rows(genParts.map(([n]) => n)),
        grids: genGrids,
      },
      compare: {
        title: 'Robust and standard side by side',
        note: 'The same seeds, targets and settings; only the classifier differs.',
        rows: [],
        grids: rm.length ? [compareGrid] : [],
      },
      inpaint: {
        title: `Inpainting (a ${r.hole.width}x${r.hole.height} hole; PSNR and SSIM inside the hole)`,
        note: 'Baselines: the mean fill PGD starts from, and a diffusion (Laplace) fill. Judge accuracy: the judge sees the image\'s true class.',
        rows: rows(['inpaint-baselines', 'inpaint-robust', 'inpaint-standard']),
        grids: rec('inpaint-baselines') ? [restoreGrid('inpaint', 'Inpainting', [['mean-fill', 'mean fill (start)'], ['diffusion-fill', 'diffusion fill']])] : [],
      },
      superResolve: {
        title: `Super-resolution (${r.cfg.srFactor}x; PSNR and SSIM over the whole image)`,
        note: `The image is averaged over ${r.cfg.srFactor}x${r.cfg.srFactor} blocks; baselines: nearest-neighbour (where PGD starts) and bicubic upsampling of those blocks.`,
        rows: rows(['super-resolve-baselines', 'super-resolve-robust', 'super-resolve-standard']),
        grids: rec('super-resolve-baselines') ? [restoreGrid('super-resolve', 'Super-resolution', [['nearest', 'nearest (start)'], ['bicubic', 'bicubic']])] : [],
      },
      translate: {
        title: 'Translation between Imagenette classes',
        note: `${r.cfg.translateTo === 'next' ? 'Each source image toward the next class (in Imagenette order)' : 'Each source image toward every other class'}. "judge: source" is how often the judge still sees the source class.`,
        rows: rows(['translate-robust', 'translate-standard']),
        grids: tr.length ? [translateGrid] : [],
      },
    },
    notes,
    parts: r.parts,
  };
}
