/** A playground job's results as a plain page (GET /jobs/:id): each PNG with its link, manifest.json, the zip. */
import type { Job } from './jobs.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function resultPage(j: Job): string {
  const st = j.status();
  const rows = (st.result?.files ?? [])
    .filter((f) => f.type === 'image/png')
    .map((f) => {
      const entry = st.result!.entries.find((e) => e.file === f.name);
      const caption = entry ? ` — target ${escapeHtml(entry.target.name)}, predicted ${escapeHtml(entry.predicted.name)}, loss ${entry.loss.toFixed(3)}` : '';
      return `<li><img src="${escapeHtml(f.url)}" alt="${escapeHtml(f.name)}"> <a href="${escapeHtml(f.url)}" download="${escapeHtml(f.name)}">${escapeHtml(f.name)}</a>${caption}</li>`;
    })
    .join('\n');
  const body = st.result
    ? `<ul class="files">\n${rows}\n</ul>\n<p><a href="${escapeHtml(st.result.manifest)}" download="manifest.json">manifest.json</a> · <a href="${escapeHtml(st.result.zip)}">all files (.zip)</a></p>`
    : `<p>This job is ${escapeHtml(st.state)}${st.error ? `: ${escapeHtml(st.error.message)} [${escapeHtml(st.error.code)}]` : ''}.</p>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>robust-synth: ${escapeHtml(st.task)} results</title><link rel="stylesheet" href="/style.css"></head>
<body class="results-page"><h1>${escapeHtml(st.task)} on ${escapeHtml(st.model)}</h1>
<p><a href="/">back to the playground</a></p>
${body}
</body></html>
`;
}
