/**
 * `npm run bench [-- options]`: the native PGD loop against a JS-driven loop, a Python loop and
 * the floor (one bare forward + backward), then what lowers the floor. See bench/README.md; the
 * options: `npx tsx bench/run.ts --help` (bench/lib/options.ts).
 *
 * Every measurement runs in its own child process (bench/worker.ts, bench/tfjs-worker.ts,
 * bench/python_loop.py). The parts: bench/lib/workloads.ts (what runs), main-table.ts, floor.ts
 * and contended.ts (the three tables), report.ts and chart.ts (results.md and chart.png).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import sharp from 'sharp';
import { chartSvg } from './lib/chart.js';
import { contendedLoads, contendedMarkdown, measureContended, writeContendedOnly } from './lib/contended.js';
import { ablation } from './lib/floor.js';
import { machine } from './lib/machine.js';
import { measureWorkload, type Row } from './lib/main-table.js';
import { args, BENCH, log, PYTHON, QUICK, SCRATCH, THREADS, USAGE } from './lib/options.js';
import { blasEnv, lastJson, run } from './lib/processes.js';
import { markdown } from './lib/report.js';
import { ensureResnet, stepFlops, workloads } from './lib/workloads.js';

async function main(): Promise<void> {
  if (args.help) {
    process.stdout.write(USAGE);
    return;
  }
  const t0 = Date.now();
  mkdirSync(SCRATCH, { recursive: true });
  const outDir = resolve(args.out!);
  mkdirSync(outDir, { recursive: true });
  const m = machine();
  const defaultEnv = blasEnv(args.blas!);
  if (!defaultEnv) throw new Error(`--blas ${args.blas}: no such BLAS found`);
  if (m.loadavgStart[0]! > 0.5 * m.cores) {
    log(`warning: load average ${m.loadavgStart[0]!.toFixed(2)} on ${m.cores} cores: other processes are running, timings will be noisy`);
  }
  contendedLoads(); // check the option before anything runs
  if (args['contended-only']) {
    const needResnet = workloads('').some((w) => w.contended && w.id.startsWith('resnet'));
    const ws = workloads(needResnet ? await ensureResnet() : '');
    const cont = await measureContended(ws, defaultEnv, m);
    writeContendedOnly(outDir, cont);
    process.stdout.write(`\n${contendedMarkdown(cont)}\nwrote the contended part of ${join(outDir, 'results.json')} and results.md in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
    return;
  }
  const resnet = await ensureResnet();
  const ws = workloads(resnet);
  const flopsCache = new Map<string, number>();
  for (const w of ws) {
    if (!flopsCache.has(w.model)) flopsCache.set(w.model, await stepFlops(w));
    w.stepFlopsPerImage = flopsCache.get(w.model);
  }
  let peaks: { fp32Gflops: number; bf16Gflops: number } | undefined;
  if (!args['no-python']) {
    peaks = lastJson(await run(PYTHON, [join(BENCH, 'python_loop.py'), 'peak', '--threads', String(THREADS), '--reps', QUICK ? '3' : '8'], defaultEnv));
  }
  const rows: Row[] = [];
  for (const w of ws) rows.push(await measureWorkload(w, defaultEnv));
  const abl = args['no-ablation'] ? undefined : await ablation(ws.filter((w) => !QUICK || w.quickAblation), defaultEnv);
  const cont = args['no-contended'] ? undefined : await measureContended(ws, defaultEnv, m);
  const date = new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
  const md = markdown(m, rows, abl, peaks, date) + (cont ? `\n${contendedMarkdown(cont)}` : '');
  const results = {
    date, quick: QUICK, threads: THREADS, blas: args.blas, machine: { ...m, loadavgEnd: loadavg() }, peaks, workloads: rows, floorLowering: abl,
    contended: cont, seconds: (Date.now() - t0) / 1000,
  };
  writeFileSync(join(outDir, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(join(outDir, 'results.md'), md);
  await sharp(Buffer.from(chartSvg(rows, abl))).png().toFile(join(outDir, 'chart.png'));
  process.stdout.write(`\n${md}\nwrote ${join(outDir, 'results.json')}, results.md and chart.png in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}

main().catch((e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
