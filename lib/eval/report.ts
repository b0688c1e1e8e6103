/**
 * The eval report as Markdown and HTML. Every judged figure shows each judge (CNN / MLP / kNN,
 * lib/eval/judges.ts) and the least favourable one, on which the claims are stated.
 */
import { judgeLabel } from './judges.js';

const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
const pct1 = (v: number) => (100 * v).toFixed(1);

function table(head: string[], rows: Array<Array<string | number>>): string {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** The judges of a report (one, `judge`, in reports made before there were several). */
const judgesOf = (r: Record<string, any>): string[] => r.judges ?? [r.judge];
/** "a / b / c" in the judges' order, or the single value of an older report. */
function each(r: Record<string, any>, row: any, key: string): string {
  const by = row.byJudge?.[key];
  if (!by) return row[key] === null || row[key] === undefined ? '-' : pct1(row[key]);
  return judgesOf(r).map((j) => (by[j] === undefined ? '-' : pct1(by[j]))).join(' / ');
}
const head = (r: Record<string, any>, what: string) => `${what} (${judgesOf(r).map(judgeLabel).join(' / ')}, %)`;
const least = (row: any, key: string) => (row[key] === null || row[key] === undefined ? '-' : `${pct(row[key])}${row.leastJudge?.[key] ? ` (${judgeLabel(row.leastJudge[key])})` : ''}`);

export function reportMarkdown(r: Record<string, any>): string {
  const gen = table(
    ['model', 'seed', head(r, 'judges agree'), 'least', head(r, 'seed alone'), 'gain (least)', 'self agrees', 'judge confidence (least)', 'Fréchet (CNN judge feats)', 'diversity'],
    r.generate.map((g: any) => [g.model, g.seed, each(r, g, 'judgeAgreement'), least(g, 'judgeAgreement'), each(r, g, 'seedJudgeAgreement'), pct(g.gain), pct(g.selfAgreement), g.judgeConfidence.toFixed(3), g.frechet.toFixed(1), g.diversity.toFixed(2)]),
  );
  const restore = (rows: any[]) =>
    table(['method', 'PSNR (dB)', 'SSIM', head(r, 'judge accuracy'), 'least'], rows.map((x) => [x.method, x.psnr.toFixed(2), x.ssim.toFixed(3), each(r, x, 'judgeAccuracy'), least(x, 'judgeAccuracy')]));
  const tr = table(
    ['model', 'eps', 'pairs', head(r, 'judges: target'), 'least', head(r, 'judges: source'), 'self: target', 'judge confidence (least)', 'mean L2 from source'],
    r.translate.map((t: any) => [t.model, t.eps, t.pairs, each(r, t, 'judgeTargetAgreement'), least(t, 'judgeTargetAgreement'), each(r, t, 'judgeSourceAgreement'), pct(t.selfTargetAgreement), t.judgeConfidence.toFixed(3), t.meanL2.toFixed(2)]),
  );
  const judges = judgesOf(r)
    .map((j) => `\`${j}\` (${judgeLabel(j)})`)
    .join(', ');
  return `# robust-synth evaluation (${r.mode}${r.bf16 ? ', bf16 autocast' : ''})

Judges: ${judges}; none of them ever synthesizes. Every judged figure is given for each judge, and "least" is the least favourable of them, the figure the claims rest on. ${r.config.perClass} generated images per class, seed and model; held-out Fashion-MNIST test images. ${r.seconds} s.

## Generation
${gen}

## Inpainting (${r.inpaint[0] ? 'metrics inside the hole' : ''})
${restore(r.inpaint)}

## Super-resolution (${r.config.srFactor}x)
${restore(r.superResolve)}

## Translation (every class to every other class)
${tr}

${featureSections(r)}`;
}

/** The feature tasks' sections of the report (absent from reports made before they existed). */
function featureSections(r: Record<string, any>): string {
  const parts: string[] = [];
  if (r.visualizeFeature?.length) {
    parts.push(`## Feature visualization (a unit maximized from noise)
${table(
  ['model', 'units', 'runs', 'unit rose', 'unit / its max on real images: start', 'final', 'roughness: start', 'final'],
  r.visualizeFeature.map((v: any) => [v.model, v.units, v.runs, pct(v.rose), v.startRatio.toFixed(2), v.finalRatio.toFixed(2), v.startRoughness.toFixed(3), v.roughness.toFixed(3)]),
)}
`);
  }
  if (r.invert?.length) {
    parts.push(`## Inversion (toward held-out targets' representations)
${table(
  ['model', 'from', 'targets', 'relative distance: start', 'final', head(r, 'judges: target class'), 'least', head(r, 'judges: start class'), 'self: target class', 'PSNR to target (dB)'],
  r.invert.map((v: any) => [v.model, v.from, v.targets, v.distanceBefore.toFixed(3), v.distanceAfter.toFixed(3), each(r, v, 'judgeTargetAgreement'), least(v, 'judgeTargetAgreement'), each(r, v, 'judgeStartAgreement'), pct(v.selfTargetAgreement), v.psnrToTarget.toFixed(2)]),
)}
`);
  }
  if (r.sketchToImage?.length) {
    parts.push(`## Sketch-to-image (Sobel sketches of held-out images)
${table(
  ['model', 'sketch', 'sketches', head(r, 'judges agree'), 'least', 'self agrees'],
  r.sketchToImage.map((v: any) => [v.model, v.polarity, v.sketches, each(r, v, 'judgeAgreement'), least(v, 'judgeAgreement'), v.selfAgreement === null ? '-' : pct(v.selfAgreement)]),
)}
`);
  }
  return parts.join('\n');
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

export function reportHtml(r: Record<string, any>): string {
  const md = reportMarkdown(r);
  // Tables from the Markdown, images beside them.
  const htmlTable = (block: string) => {
    const lines = block.trim().split('\n').filter((l) => l.startsWith('|'));
    const cells = (l: string) => l.split('|').slice(1, -1).map((c) => c.trim());
    return `<table><tr>${cells(lines[0]!).map((c) => `<th>${esc(c)}</th>`).join('')}</tr>${lines.slice(2).map((l) => `<tr>${cells(l).map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;
  };
  const sections = md.split('\n## ').slice(1).map((s) => {
    const [title, ...rest] = s.split('\n');
    const key = title!.startsWith('Generation') ? 'generate' : title!.startsWith('Inpainting') ? 'inpaint' : title!.startsWith('Super') ? 'superResolve'
      : title!.startsWith('Feature') ? 'visualizeFeature' : title!.startsWith('Inversion') ? 'invert' : title!.startsWith('Sketch') ? 'sketchToImage' : 'translate';
    const imgs = Object.entries(r.grids as Record<string, string>).filter(([k]) => k.startsWith(key + '/'));
    return `<section><h2>${esc(title!)}</h2>${htmlTable(rest.join('\n'))}<div class="grids">${imgs.map(([k, f]) => `<figure><img src="${esc(f)}" alt="${esc(k)}"><figcaption>${esc(k.split('/').slice(1).join(', '))}</figcaption></figure>`).join('')}</div></section>`;
  });
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>robust-synth evaluation</title>
<style>body{font:14px system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
.grids{display:flex;flex-wrap:wrap;gap:1.5em}img{image-rendering:pixelated}figure{margin:0}</style></head><body>
<h1>robust-synth evaluation (${esc(r.mode)})</h1><p>Judges: ${judgesOf(r).map((j) => `<code>${esc(j)}</code>`).join(', ')} (the least favourable one is the figure the claims rest on); generated ${esc(r.generatedAt)} in ${r.seconds} s. Inpainting rows: input, output, original. Super-resolution rows: nearest, bicubic, output, original. Translation rows: a source, then it translated to each other class.</p>
${sections.join('\n')}</body></html>
`;
}
