/** results.md: the main table, the TF.js peer, batching, and the floor-lowering and bf16 tables. */
import { basename } from 'node:path';
import { variants, type AblationCell } from './floor.js';
import type { Machine } from './machine.js';
import type { Row } from './main-table.js';
import { QUICK, THREADS } from './options.js';
import { f, median, ms, pairedRatio, shortBlas } from './stats.js';

export function markdown(m: Machine, rows: Row[], abl: Record<string, Record<string, AblationCell>> | undefined, peaks: { fp32Gflops: number; bf16Gflops: number } | undefined, date: string): string {
  const lines: string[] = [];
  const b = rows[0]?.build;
  lines.push(`Measured ${date} on ${m.cpu} (${m.cores} cores${m.features.length ? `; ${m.features.join(', ')}` : ''}), ${m.memoryGiB} GiB, `
    + `LibTorch ${b?.torchVersion ?? '?'} (${b?.onednn ?? ''}; ${b?.cpuCapability ?? ''}), BLAS: ${shortBlas(rows[0]?.blas.native)}, `
    + `${THREADS} threads, Node ${m.node}${QUICK ? ', --quick' : ''}. Load average at start: ${m.loadavgStart.map((x) => x.toFixed(2)).join(' ')}. `
    + `Models: ${[...new Set(rows.map((r) => basename(r.workload.model)))].join(', ')} (ResNet50: random weights, scripted by models/export_resnet50.py --random).`);
  lines.push('');
  lines.push('| workload | native ms/step | JS-driven | Python | floor | image-steps/s | GFLOP/s (% of fp32 peak) | native/floor | JS/native | native/Python | peak RSS native / Python | event-loop lag p99 / max |');
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const pct = r.gflops !== undefined ? ` (${f((100 * r.gflops) / m.fp32PeakGflops, 0)}%)` : '';
    lines.push(`| ${r.workload.label} | ${ms(r.native)} | ${ms(r.js)} | ${ms(r.python)} | ${ms(r.floor)} | ${f(r.imageStepsPerSec, r.imageStepsPerSec < 100 ? 2 : 0)} | ${f(r.gflops)}${pct} | `
      + `${pairedRatio(r.ratios.nativeOverFloor, r.pairedRatios.nativeOverFloor)} | ${pairedRatio(r.ratios.jsOverNative, r.pairedRatios.jsOverNative)} | `
      + `${pairedRatio(r.ratios.nativeOverPython, r.pairedRatios.nativeOverPython)} | ${f(r.rssMb.native, 0)} / ${f(r.rssMb.python, 0)} MB | ${f(r.lag.p99Ms)} / ${f(r.lag.maxMs)} ms |`);
  }
  lines.push('');
  lines.push(`Rounds: each workload runs in ${rows.map((r) => r.workload.runs).filter((v, i, a) => a.indexOf(v) === i).join(' or ')} rounds; a round is one native process `
    + `(a floor run, an untimed 2-step run, the native and the JS-driven run, a floor run, back to back) and one Python process. `
    + `The native and JS-driven runs take turns going first, and so do the two processes, over an even number of rounds: whichever ran first in a process was 2-6 % slower. `
    + `ms/step: each round's mean, median over rounds (± half the min-max range). Ratios: the median of the ratios taken within each round (their range in brackets). Native and Python: the loop's steps `
    + `without the final useBest forward; JS-driven: awaited \`session.step()\` calls; floor: bare forward + backward w.r.t. the input, timed in C++; `
    + `event-loop lag: a 10 ms setInterval during a separate, untimed native run of about a second. `
    + `fp32 peak: ${f(m.fp32PeakGflops, 0)} GFLOP/s (${m.fp32PeakSource})`
    + (peaks ? `; a large oneDNN 1x1 convolution reaches ${f(peaks.fp32Gflops, 0)} GFLOP/s fp32 and ${f(peaks.bf16Gflops, 0)} bf16 here` : '')
    + `. Step FLOPs: twice the forward's convolution and linear FLOPs (ResNet50 at 224: ${f((rows.find((r) => r.workload.id.startsWith('resnet'))?.workload.stepFlopsPerImage ?? NaN) / 1e9, 2)} GFLOP per image).`);
  const prep = rows[0]?.preparation;
  if (prep) {
    lines.push('');
    lines.push(`Model preparation (library defaults): channels-last ${prep.channelsLast ? 'on' : 'off'}, freeze ${prep.freeze ? 'on' : 'off'}; Python ran with the same preparation and the same ATen kernels (${rows[0]?.build.cpuCapability ?? '?'}). `
      + `Results: JS-driven = native bit for bit in ${rows.filter((r) => r.jsMatchesNative).length}/${rows.length} workloads; native vs Python max abs difference of the final images: `
      + rows.map((r) => `${r.workload.id} ${r.nativeVsPythonMaxDiff === undefined ? '—' : r.nativeVsPythonMaxDiff.toExponential(1)}`).join(', ') + '.');
  }
  const tf = rows.filter((r) => r.tfjs);
  if (tf.length) {
    const b0 = tf[0]!.tfjs!.backend;
    lines.push('');
    lines.push(`### TensorFlow.js peer: the same classifier and PGD loop in TF.js ${b0.version} (${b0.backend} backend${b0.simd ? ', SIMD' : ''}, ${b0.threads === 1 ? '1 thread' : 'multi-threaded'})`);
    lines.push('');
    lines.push(`| workload | native ms/step (${THREADS} threads) | TF.js ms/step | native/TF.js | TF.js, conv gradients as forward convs | native/that | `
      + 'native on 1 thread | native 1-thread/that | same predictions | max abs image diff (steps) | logits max diff at x0 | peak RSS TF.js |');
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of tf) {
      const t = r.tfjs!;
      lines.push(`| ${r.workload.label} | ${ms(r.native)} | ${ms(t.ms)} | ${pairedRatio(t.ratios.nativeOverTfjs, t.pairedRatios.nativeOverTfjs)} | `
        + `${ms(t.msFast)} | ${pairedRatio(t.ratios.nativeOverTfjsFast, t.pairedRatios.nativeOverTfjsFast)} | ${ms(t.native1)} | `
        + `${pairedRatio(t.ratios.native1OverTfjsFast, t.pairedRatios.native1OverTfjsFast)} | ${f(t.compare.predictionsAgree * 100, 0)}% | `
        + `${t.compare.imagesMaxDiff.toExponential(1)} (${t.compare.steps}) | ${t.compare.logitsMaxDiff.toExponential(1)} | ${f(t.rssMb, 0)} MB |`);
    }
    lines.push('');
    lines.push('The classifier is exported from its TorchScript file at bench time (`bench/export_tfjs_weights.py`: the frozen graph, op by op, weights to NHWC) and runs as '
      + 'TF.js ops; the loop is the same (targeted, cross-entropy, L2 step and projection, clamp, useBest) from the same start. One TF.js process per round, in the '
      + 'same paired rounds as the native process (order alternating); TF.js runs fewer steps where its steps are slow, so the ratios compare ms per step (< 1: native is faster). '
      + '"TF.js ms/step": `tf.grad` with TF.js\'s own gradients, whose convolution input gradient (Conv2DBackpropInput) is a plain loop in the wasm backend, 60-85 % of a step; '
      + '"conv gradients as forward convs": the same gradient written with `tf.customGrad` as a forward convolution of the stride-dilated output gradient with the '
      + `flipped kernel, which XNNPACK runs (the same values: the two TF.js results differ by ${rows.filter((r) => r.tfjs).map((r) => { const d = r.tfjs!.compare.convGradsMaxDiff; return d === undefined ? '—' : d === 0 ? '0' : d.toExponential(1); }).join(', ')}). `
      + '"native on 1 thread": the native loop timed in the TF.js process right after TF.js, on one thread as the wasm backend runs in Node.js. Results are compared '
      + 'after the TF.js step count (each loop\'s useBest result, last round); a long trajectory amplifies ulp-level differences, so a max abs image difference '
      + 'near 1 after hundreds of steps with the same predictions means diverged paths, not a different loop.');
  }
  const families = [...new Set(rows.map((r) => r.workload.model))];
  const batching = families.map((fam) => {
    const rs = rows.filter((r) => r.workload.model === fam).sort((a, b) => a.workload.batch - b.workload.batch);
    if (rs.length < 2) return '';
    return rs.slice(1).map((r) => `${rs[0]!.workload.label} → batch ${r.workload.batch}: ×${f(r.imageStepsPerSec / rs[0]!.imageStepsPerSec, 2)} image-steps/s`).join('; ');
  }).filter(Boolean);
  if (batching.length) {
    lines.push('');
    lines.push(`Batching: ${batching.join('; ')}.`);
  }
  lines.push('');
  lines.push(`Model load (with the default preparation): ${rows.map((r) => `${r.workload.id} ${f(r.loadMs, 0)} ms`).join(', ')}; `
    + `warm-up before timing: 3 passes (the TorchScript profiling executor optimizes after its first runs).`);
  if (abl) {
    const ids = [...new Set(Object.values(abl).flatMap((c) => Object.keys(c)))];
    const labels = Object.fromEntries(rows.map((r) => [r.workload.id, r.workload.label]));
    lines.push('');
    lines.push('### Lowering the floor (ms per forward + backward; × = speed-up over the row above; side variants: over the defaults row, PASSIVE under contention: over the contended row)');
    lines.push('');
    lines.push(`| change | ${ids.map((id) => labels[id] ?? id).join(' | ')} |`);
    lines.push(`|---|${ids.map(() => '---').join('|')}|`);
    const vs = variants();
    let prev: Record<string, number> = {};
    for (const v of vs) {
      const cells = abl[v.id];
      if (!cells) continue;
      const base = v.chain ? prev : Object.fromEntries(ids.map((id) => [id, abl[v.baseId ?? 'default']?.[id]?.floor?.medianMs ?? NaN]));
      const txt = ids.map((id) => {
        const c = cells[id];
        if (!c) return '—';
        if (c.error) return `n/a (${c.error.slice(0, 60)})`;
        if (v.bf16Check && c.bf16) return `${ms(c.bf16.floor)} (×${f(c.bf16.speedup, 2)})`;
        const x = c.floor!.medianMs;
        const g = v.id === 'default' || base[id] === undefined || !Number.isFinite(base[id]!) ? '' : ` (×${f(base[id]! / x, 2)})`;
        return `${ms(c.floor)}${g}`;
      });
      lines.push(`| ${v.bf16Check ? 'default + bf16 autocast' : v.label} | ${txt.join(' | ')} |`);
      if (v.chain) prev = Object.fromEntries(ids.map((id) => [id, cells[id]?.floor?.medianMs ?? NaN]));
    }
    const bf = abl.bf16;
    if (bf) {
      lines.push('');
      lines.push('bf16 autocast against fp32, same start, same steps: distance between the two results relative to how far the fp32 run moved (per image), '
        + 'agreement of the predicted classes, and the final losses:');
      lines.push('');
      lines.push('| workload | steps | bf16 speed-up (floor) | result distance / fp32 move (median, max) | max abs pixel diff | same prediction | loss fp32 → bf16 (mean) |');
      lines.push('|---|---|---|---|---|---|---|');
      for (const id of ids) {
        const c = bf[id]?.bf16;
        if (!c) continue;
        const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
        const e = (x: number) => x.toExponential(2);
        lines.push(`| ${labels[id] ?? id} | ${c.steps} | ×${f(c.speedup, 2)} | ${f(median(c.relL2), 3)}, ${f(Math.max(...c.relL2), 3)} | ${f(c.maxAbsDiff, 3)} | ${f(c.agree * 100, 0)}% | ${e(mean(c.fp32Loss))} → ${e(mean(c.bf16Loss))} |`);
      }
    }
  }
  return lines.join('\n') + '\n';
}
