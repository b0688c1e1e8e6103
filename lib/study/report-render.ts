/** The study's report rendered: report.md (the tables) and report.html (tables and image grids). */
import { SECTION_KEYS, type Grid, type SectionKey, type StudyReport } from './report.js';

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
    `This run: ${r.seconds} s, ${ran.length} of ${r.parts.length} parts (${r.parts.length - ran.length} finished earlier and were skipped), on ${r.compute}. ` +
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
