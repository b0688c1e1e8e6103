/** The study's report: report.json (everything), report.md (the tables), report.html (tables and image grids). */
import { relative } from 'node:path';
import type { Hole } from '../tasks/inpaint.js';
import { studyReference, type StudyConfig } from './config.js';
import type { ImagenetteFolder, SeedsInfo } from './data.js';
import type { ModelIdentity, Role } from './models.js';
import type { PartRecord } from './parts.js';

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

// ------------------------------------------------------------------------ rendering

const pct = (v: unknown) => (typeof v === 'number' ? `${(100 * v).toFixed(1)} %` : '–');
const num = (v: unknown, d: number) => (typeof v === 'number' ? v.toFixed(d) : '–');

interface Table {
  head: string[];
  rows: string[][];
}

function tables(r: StudyReport): Record<SectionKey, Table | undefined> {
  const s = r.sections;
  const restore = (rows: Array<Record<string, any>>): Table => ({
    head: ['method', 'judge', 'PSNR (dB)', 'SSIM', 'judge accuracy', 'self accuracy'],
    rows: rows.map((x) => [x.method, x.judge, num(x.psnr, 2), num(x.ssim, 3), pct(x.judgeAccuracy), x.baseline ? '' : pct(x.selfAccuracy)]),
  });
  return {
    generate: {
      head: ['model', 'seed', 'judge', 'images', 'judge agrees', 'self agrees', 'seed alone (judge)', 'gain', 'judge confidence', 'diversity'],
      rows: s.generate.rows.map((g: Record<string, any>) => [
        `${g.model} (${g.modelName})`,
        g.seed,
        g.judge,
        String(g.images),
        pct(g.judgeAgreement),
        pct(g.selfAgreement),
        pct(g.seedJudgeAgreement),
        pct(g.gain),
        num(g.judgeConfidence, 3),
        num(g.diversity, 2),
      ]),
    },
    compare: undefined,
    inpaint: restore(s.inpaint.rows),
    superResolve: restore(s.superResolve.rows),
    translate: {
      head: ['model', 'judge', 'eps', 'pairs', 'judge: target', 'judge: source', 'self: target', 'judge confidence', 'mean L2 from source'],
      rows: s.translate.rows.map((t: Record<string, any>) => [
        `${t.model} (${t.modelName})`,
        t.judge,
        String(t.eps),
        String(t.pairs),
        pct(t.judgeTargetAgreement),
        pct(t.judgeSourceAgreement),
        pct(t.selfTargetAgreement),
        num(t.judgeConfidence, 3),
        num(t.meanL2, 2),
      ]),
    },
  };
}

function timing(r: StudyReport): string {
  const ran = r.parts.filter((p) => p.status === 'ran');
  const total = r.parts.reduce((a, p) => a + p.seconds, 0);
  return (
    `This run: ${r.seconds} s, ${ran.length} of ${r.parts.length} parts (${r.parts.length - ran.length} finished earlier and were skipped). ` +
    `All parts together took ${Math.round(total)} s of computation, seed fit and model loading aside.`
  );
}

function settingsLines(r: StudyReport): string[] {
  const c = r.config;
  return (Object.keys(c.settings) as Array<keyof typeof c.settings>).map((t) => {
    const s = c.settings[t];
    return `${t}: eps ${s.eps}, step ${s.step}, ${s.iterations} iterations, L${s.constraint}${s.penaltyWeight !== undefined ? `, penalty weight ${s.penaltyWeight}` : ''}`;
  });
}

function intro(r: StudyReport): string[] {
  const m = r.models;
  return [
    `Robust: ${m.robust!.name} (${m.robust!.path}); standard: ${m.standard!.name} (${m.standard!.path})${m.judge ? `; judge: ${m.judge.name} (${m.judge.path})` : ''}.`,
    r.judging.note,
    r.restriction,
    `Data: ${r.data.root} (${r.data.layout === 'train-val' ? 'train/ and val/' : 'one folder, split'}). ${r.data.note} Classes: ${r.data.classes.map((c) => `${c.name} (${c.wnid}, ImageNet ${c.index}; ${c.train} train, ${c.val} val)`).join(', ')}.`,
    r.seeds
      ? `Seeds: fitted on ${Object.values(r.seeds.images).reduce((a, b) => a + b, 0)} training images at 3x224x224 (${r.seeds.cached ? 'reused from' : 'written to'} ${r.seeds.file}); multivariate normal on ${r.seeds.factor}x${r.seeds.factor} block averages, ${r.seeds.sampler}.`
      : 'Seeds: not needed by this run.',
    r.mode === 'quick'
      ? `Mode: --quick, reduced from the reference: ${r.config.reductions.join('; ')}.`
      : r.config.reductions.length
        ? `Mode: full, reduced: ${r.config.reductions.join('; ')}.`
        : 'Mode: full, with the reference settings (REFERENCE_224).',
    `Settings: ${settingsLines(r).join('; ')}.`,
  ];
}

export function reportMarkdown(r: StudyReport): string {
  const t = tables(r);
  const md = (x: Table) => [`| ${x.head.join(' | ')} |`, `| ${x.head.map(() => '---').join(' | ')} |`, ...x.rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
  const out: string[] = [`# The study at 224x224 (${r.mode})`, '', `Generated ${r.generatedAt}. ${timing(r)}`, '', ...intro(r).map((l) => `- ${l}`), ''];
  for (const key of SECTION_KEYS) {
    const s = r.sections[key];
    out.push(`## ${s.title}`, '', s.note, '');
    const tab = t[key];
    if (tab && tab.rows.length) out.push(md(tab), '');
    for (const g of s.grids) out.push(`Images (${g.title}): see report.html; files under ${[...new Set(g.rows.flatMap((row) => row.cells.map((c) => c?.src.split('/').slice(0, -1).join('/')).filter(Boolean)))].join(', ')}.`, '');
  }
  if (r.notes.length) out.push('## Notes', '', ...r.notes.map((n) => `- ${n}`), '');
  out.push('## Parts', '', md({ head: ['part', 'status', 'seconds', 'PGD image-steps'], rows: r.parts.map((p) => [p.name, p.status, String(p.seconds), String(p.steps)]) }), '');
  return out.join('\n');
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function gridHtml(g: Grid): string {
  const head = `<tr><th></th>${g.columns.map((c) => `<th>${esc(c)}</th>`).join('')}</tr>`;
  const body = g.rows
    .map(
      (row) =>
        `<tr><th class="label">${esc(row.label)}</th>${row.cells
          .map((c) =>
            c
              ? `<td><figure><img src="${esc(c.src)}" width="160" height="160" alt="${esc(row.label)}: ${esc(c.caption)}" loading="lazy"><figcaption${c.ok === undefined ? '' : ` class="${c.ok ? 'ok' : 'no'}"`}>${esc(c.caption)}</figcaption></figure></td>`
              : '<td></td>',
          )
          .join('')}</tr>`,
    )
    .join('');
  return `<div class="grid"><h3>${esc(g.title)}</h3><p class="caption">${esc(g.caption)}</p><table class="images">${head}${body}</table></div>`;
}

export function reportHtml(r: StudyReport): string {
  const t = tables(r);
  const tableHtml = (x: Table) =>
    `<table class="metrics"><tr>${x.head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${x.rows.map((row) => `<tr>${row.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;
  const sections = SECTION_KEYS.map((key) => {
    const s = r.sections[key];
    const tab = t[key];
    return `<section id="${key}"><h2>${esc(s.title)}</h2><p>${esc(s.note)}</p>${tab && tab.rows.length ? tableHtml(tab) : ''}${s.grids.map(gridHtml).join('')}</section>`;
  });
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>robust-synth: the study at 224x224</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0}
table.metrics td,table.metrics th{border:1px solid #ccc;padding:3px 8px;text-align:right}table.metrics td:first-child,table.metrics td:nth-child(2){text-align:left}
table.images td{padding:2px;vertical-align:top}table.images th{font-weight:600;padding:2px 6px}th.label{text-align:right;white-space:nowrap}
figure{margin:0}figcaption{font-size:11px;max-width:160px}figcaption.ok{color:#070}figcaption.no{color:#a00}.caption{color:#444}ul.intro li{margin:.3em 0}</style></head><body>
<h1>The study at 224x224 (${esc(r.mode)})</h1>
<p>Santurkar et al., "Image Synthesis with a Single (Robust) Classifier" (2019), on Imagenette's 10 ImageNet classes, made by <code>robust-synth study</code> on ${esc(r.generatedAt)}. ${esc(timing(r))}</p>
<ul class="intro">${intro(r).map((l) => `<li>${esc(l)}</li>`).join('')}</ul>
${sections.join('\n')}
${r.notes.length ? `<section id="notes"><h2>Notes</h2><ul>${r.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul></section>` : ''}
<section id="parts"><h2>Parts</h2>${tableHtml({ head: ['part', 'status', 'seconds', 'PGD image-steps'], rows: r.parts.map((p) => [p.name, p.status, String(p.seconds), String(p.steps)]) })}</section>
</body></html>
`;
}
