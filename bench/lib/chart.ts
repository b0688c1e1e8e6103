/** chart.png: relative ms/step per workload (native = 1), and the floor-lowering speed-ups. */
import { variants, type AblationCell } from './floor.js';
import type { Row } from './main-table.js';
import { esc, f } from './stats.js';

export function chartSvg(rows: Row[], abl: Record<string, Record<string, AblationCell>> | undefined): string {
  const W = 1000;
  const colors = { floor: '#999999', native: '#2f6db5', js: '#6fa8dc', python: '#e69138' };
  const parts: string[] = [];
  let y = 40;
  parts.push(`<text x="20" y="26" font-size="18" font-family="DejaVu Sans, sans-serif" font-weight="bold">ms per step relative to native (native = 1.0); lower is better</text>`);
  const x0 = 230;
  const scaleMax = Math.max(1.2, ...rows.flatMap((r) => [r.floor.medianMs / r.native.medianMs, r.ratios.jsOverNative, r.python ? r.python.medianMs / r.native.medianMs : 0]));
  const px = (v: number) => ((W - x0 - 90) * v) / scaleMax;
  for (const r of rows) {
    const bars: [string, string, number][] = [
      ['floor', colors.floor, r.floor.medianMs / r.native.medianMs],
      ['native', colors.native, 1],
      ['JS-driven', colors.js, r.ratios.jsOverNative],
    ];
    if (r.python) bars.push(['Python', colors.python, r.python.medianMs / r.native.medianMs]);
    parts.push(`<text x="20" y="${y + 14}" font-size="13" font-family="DejaVu Sans, sans-serif">${esc(r.workload.label)}</text>`);
    parts.push(`<text x="20" y="${y + 30}" font-size="11" fill="#555" font-family="DejaVu Sans, sans-serif">native ${esc(f(r.native.medianMs, r.native.medianMs < 10 ? 2 : 1))} ms/step</text>`);
    for (const [name, color, v] of bars) {
      parts.push(`<rect x="${x0}" y="${y}" width="${px(v).toFixed(1)}" height="10" fill="${color}"/>`);
      parts.push(`<text x="${(x0 + px(v) + 6).toFixed(1)}" y="${y + 9}" font-size="10" font-family="DejaVu Sans, sans-serif">${name} ${v.toFixed(2)}</text>`);
      y += 12;
    }
    y += 14;
  }
  // 1.0 line
  parts.push(`<line x1="${x0 + px(1)}" y1="34" x2="${x0 + px(1)}" y2="${y - 10}" stroke="#000" stroke-dasharray="3,3"/>`);
  if (abl) {
    y += 20;
    const chain = variants().filter((v) => v.chain && abl[v.id]);
    const ids = rows.map((r) => r.workload.id).filter((id) => chain.some((v) => abl[v.id]?.[id]?.floor));
    parts.push(`<text x="20" y="${y}" font-size="18" font-family="DejaVu Sans, sans-serif" font-weight="bold">floor speed-up over LibTorch defaults (log scale)</text>`);
    y += 14;
    const palette = ['#cccccc', '#9fc5e8', '#6fa8dc', '#3d85c6', '#0b5394', '#073763', '#20124d'];
    const speedups = ids.flatMap((id) => chain.map((v) => (abl.libtorch?.[id]?.floor?.medianMs ?? NaN) / (abl[v.id]?.[id]?.floor?.medianMs ?? NaN)));
    const maxS = Math.max(2, ...speedups.filter(Number.isFinite));
    const lx = (v: number) => ((W - x0 - 120) * Math.log(Math.max(1, v))) / Math.log(maxS);
    for (const id of ids) {
      const label = rows.find((r) => r.workload.id === id)?.workload.label ?? id;
      parts.push(`<text x="20" y="${y + 14}" font-size="13" font-family="DejaVu Sans, sans-serif">${esc(label)}</text>`);
      chain.forEach((v, i) => {
        const s = (abl.libtorch?.[id]?.floor?.medianMs ?? NaN) / (abl[v.id]?.[id]?.floor?.medianMs ?? NaN);
        if (!Number.isFinite(s)) return;
        parts.push(`<rect x="${x0}" y="${y}" width="${Math.max(1, lx(s)).toFixed(1)}" height="10" fill="${palette[i % palette.length]}"/>`);
        parts.push(`<text x="${(x0 + Math.max(1, lx(s)) + 6).toFixed(1)}" y="${y + 9}" font-size="10" font-family="DejaVu Sans, sans-serif">${esc(v.id)} ×${s.toFixed(2)}</text>`);
        y += 12;
      });
      y += 14;
    }
  }
  const H = y + 10;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"><rect width="${W}" height="${H}" fill="white"/>${parts.join('')}</svg>`;
}
