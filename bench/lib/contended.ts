/** The contended table: the same native workload on a quiet machine and beside another CPU-bound process. */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { basename, join } from 'node:path';
import type { Machine } from './machine.js';
import { args, log, QUICK, THREADS } from './options.js';
import { LOAD_LABELS, processCpuMs, startLoad, worker, type LoadKind } from './processes.js';
import { f, median, ms, pairedRatio, summarize } from './stats.js';
import { writeInputs, type Workload } from './workloads.js';

export type ContendedPath = 'native' | 'js' | 'logits';
export type Condition = 'idle' | LoadKind;

export interface ContendedCondition {
  /** ms/step (logits: ms/call), one value per round; NaN where that round failed. */
  native: number[];
  js: number[];
  logits: number[];
  /** The worker's CPU time over wall time during its native run: the cores it kept busy. */
  cpuPerWall: number[];
  /** getThreads() in the worker. */
  threads: number[];
  /** The co-runner's CPU time over the worker's lifetime: the cores the co-runner got. */
  loadCores: number[];
}

export interface ContendedRow {
  id: string;
  label: string;
  model: string;
  batch: number;
  steps: number;
  extras: boolean;
  conditions: Partial<Record<Condition, ContendedCondition>>;
  /** loaded/idle: the median of the per-round ratios, and the ratios. */
  ratios: Partial<Record<LoadKind, Partial<Record<ContendedPath, { median: number; rounds: number[] }>>>>;
  errors: string[];
}

export interface ContendedResults {
  date: string;
  quick: boolean;
  machine: { cpu: string; cores: number; loadavgStart: number[]; loadavgEnd: number[] };
  threadPolicy: string;
  loads: LoadKind[];
  rounds: number;
  target: number;
  rows: ContendedRow[];
  seconds: number;
}

export const CONTENDED_TARGET = 2.5;

export function contendedLoads(): LoadKind[] {
  const loads = (args['contended-load'] ?? '').split(',').map((x) => x.trim()).filter(Boolean);
  for (const l of loads) if (l !== 'spin' && l !== 'omp') throw new Error(`--contended-load ${l}: expected spin, omp or spin,omp`);
  return [...new Set(loads)] as LoadKind[];
}

export async function measureContended(ws: Workload[], env: NodeJS.ProcessEnv, m: Machine): Promise<ContendedResults> {
  const t0 = Date.now();
  const loads = contendedLoads();
  const rounds = QUICK ? 2 : 4;
  // The library's own thread policy is what is measured, unless --threads says otherwise.
  const threads = args.threads ? THREADS : undefined;
  const rows: ContendedRow[] = [];
  for (const w of ws.filter((x) => x.contended)) {
    const c = w.contended!;
    const { x0File, targetsFile } = writeInputs(w);
    const conditions: Condition[] = ['idle', ...loads];
    const row: ContendedRow = {
      id: w.id, label: w.label, model: basename(w.model), batch: w.batch, steps: c.steps, extras: c.extras, conditions: {}, ratios: {}, errors: [],
    };
    for (const cond of conditions) {
      row.conditions[cond] = { native: [], js: [], logits: [], cpuPerWall: [], threads: [], loadCores: [] };
    }
    log(`[${w.id}] contended: ${rounds} rounds of ${c.steps} steps, idle and ${loads.map((l) => LOAD_LABELS[l]).join(' and ')} (order alternating) ...`);
    for (let round = 0; round < rounds; round++) {
      // Paired rounds: every condition once per round, the order reversed every other round.
      const order = round % 2 === 0 ? conditions : [...conditions].reverse();
      for (const cond of order) {
        const cell = row.conditions[cond]!;
        const corunner = cond === 'idle' ? undefined : startLoad(cond, env);
        try {
          await corunner?.ready;
          const cpu0 = processCpuMs(corunner?.proc.pid);
          const tw = performance.now();
          const r = await worker({
            kind: 'contended', model: w.model, inputShape: w.inputShape, batch: w.batch, x0File, targetsFile, threads,
            eps: w.eps, step: w.step, steps: c.steps, runs: 1, floorReps: 1, warmup: 2, extras: c.extras, logitsReps: c.steps, round, lag: false,
          }, env);
          const loadCores = corunner ? (processCpuMs(corunner.proc.pid) - cpu0) / (performance.now() - tw) : 0;
          cell.native[round] = r.nativeStepMs[0] ?? NaN;
          cell.js[round] = r.jsStepMs[0] ?? NaN;
          cell.logits[round] = r.logitsMs?.[0] ?? NaN;
          cell.cpuPerWall[round] = r.nativeCpuPerWall?.[0] ?? NaN;
          cell.threads[round] = r.threads;
          cell.loadCores[round] = loadCores;
        } catch (e) {
          row.errors.push(`${cond}, round ${round + 1}: ${(e as Error).message.split('\n')[0]!.slice(0, 200)}`);
          for (const k of ['native', 'js', 'logits', 'cpuPerWall', 'threads', 'loadCores'] as const) cell[k][round] = NaN;
        } finally {
          if (corunner) {
            await corunner.stop();
            await new Promise((r) => setTimeout(r, 1000)); // the CPUs quiet again before the next measurement
          }
        }
      }
      const idle = row.conditions.idle!;
      log(`[${w.id}] round ${round + 1}: native ms/step ${conditions.map((cond) => `${cond} ${f(row.conditions[cond]!.native[round], 2)}`).join(', ')}`
        + ` (idle ${f(idle.cpuPerWall[round], 1)} cores)`);
    }
    for (const l of loads) {
      const loaded = row.conditions[l]!;
      const idle = row.conditions.idle!;
      const paths: ContendedPath[] = c.extras ? ['native', 'js', 'logits'] : ['native'];
      row.ratios[l] = {};
      for (const p of paths) {
        const rs = loaded[p].map((x, i) => x / idle[p][i]!).filter(Number.isFinite);
        row.ratios[l]![p] = { median: median(rs), rounds: rs };
      }
    }
    rows.push(row);
  }
  return {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    quick: QUICK,
    machine: { cpu: m.cpu, cores: m.cores, loadavgStart: m.loadavgStart, loadavgEnd: loadavg() },
    threadPolicy: threads ? `--threads ${threads}` : "the library's default",
    loads,
    rounds,
    target: CONTENDED_TARGET,
    rows,
    seconds: (Date.now() - t0) / 1000,
  };
}

export const CONTENDED_START = '<!-- contended:start -->';
export const CONTENDED_END = '<!-- contended:end -->';

export function contendedMarkdown(c: ContendedResults): string {
  const lines: string[] = [CONTENDED_START, '', '### Contention: the same loop on a quiet machine and beside another CPU-bound process', ''];
  const medianOf = (xs: number[]) => median(xs.filter(Number.isFinite));
  const cellMs = (xs: number[] | undefined) => {
    const v = (xs ?? []).filter(Number.isFinite);
    return v.length ? ms(summarize(v)) : '—';
  };
  lines.push(`Measured ${c.date} on ${c.machine.cpu} (${c.machine.cores} cores), ${c.rounds} paired rounds${c.quick ? ' (--quick)' : ''}, `
    + `thread policy: ${c.threadPolicy}. Load average at start: ${c.machine.loadavgStart.map((x) => x.toFixed(2)).join(' ')}. `
    + `Target: loaded/idle ≤ ${c.target}.`);
  lines.push('');
  const head = ['workload', 'idle'];
  for (const l of c.loads) head.push(LOAD_LABELS[l], 'loaded/idle');
  const condNames = `idle${c.loads.map((l) => ` / ${l}`).join('')}`;
  head.push(`threads (${condNames}); cores the loop used (${condNames})`, `cores the co-runner got: ${c.loads.join(' / ')}`);
  lines.push(`| ${head.join(' | ')} |`);
  lines.push(`|${head.map(() => '---').join('|')}|`);
  const names: Record<ContendedPath, string> = { native: 'native pgd, ms/step', js: 'JS-driven session, ms/step', logits: 'logits(), ms/call' };
  for (const r of c.rows) {
    const paths: ContendedPath[] = r.extras ? ['native', 'js', 'logits'] : ['native'];
    for (const p of paths) {
      const cells = [`${r.label}: ${names[p]}`, cellMs(r.conditions.idle?.[p])];
      for (const l of c.loads) {
        const ratio = r.ratios[l]?.[p];
        const ok = ratio && Number.isFinite(ratio.median) ? (ratio.median <= c.target ? ' ✓' : ' ✗') : '';
        cells.push(cellMs(r.conditions[l]?.[p]), ratio ? `${pairedRatio(ratio.median, ratio.rounds)}${ok}` : '—');
      }
      if (p === 'native') {
        const conds = ['idle', ...c.loads] as Condition[];
        const thr = conds.map((cond) => [...new Set((r.conditions[cond]?.threads ?? []).filter(Number.isFinite))].join(',') || '?').join(' / ');
        const used = conds.map((cond) => f(medianOf(r.conditions[cond]?.cpuPerWall ?? []), 1)).join(' / ');
        cells.push(`${thr}; ${used}`, c.loads.map((l) => f(medianOf(r.conditions[l]?.loadCores ?? []), 1)).join(' / '));
      } else {
        cells.push('', '');
      }
      lines.push(`| ${cells.join(' | ')} |`);
    }
  }
  lines.push('');
  lines.push(`Each round runs one worker process per condition (idle, then ${c.loads.join(', ')}; the order reversed every other round), each with a fresh `
    + 'co-runner that the bench starts before the worker (and waits until it computes) and kills after it: '
    + '`spin` is a Node.js busy loop on one thread; `omp` is `bench/python_loop.py load` (LibTorch OpenMP convolutions on '
    + `${THREADS} threads, like a training job). The worker loads the model with ${c.threadPolicy === "the library's default" ? "the library's own thread policy (no setThreads call)" : c.threadPolicy}, `
    + 'warms up (2 floor passes, a 2-step run) and times one run of each path. ms/step: median over rounds (± half the min-max range); '
    + 'loaded/idle: the median of the per-round ratios (their range in brackets). Threads: `getThreads()` after the native run; '
    + 'cores used: the worker\'s CPU time over wall time during the native run; cores the co-runner got: its CPU time over the worker\'s lifetime.');
  const errs = c.rows.flatMap((r) => r.errors.map((e) => `${r.id}: ${e}`));
  if (errs.length) {
    lines.push('');
    lines.push(`Failed measurements: ${errs.join('; ')}.`);
  }
  lines.push('', CONTENDED_END, '');
  return lines.join('\n');
}

/** --contended-only: replaces the contended part of an existing results.json / results.md (or starts them). */
export function writeContendedOnly(outDir: string, c: ContendedResults): void {
  const jsonPath = join(outDir, 'results.json');
  let results: Record<string, unknown> = {};
  if (existsSync(jsonPath)) {
    try {
      results = JSON.parse(readFileSync(jsonPath, 'utf8')) as Record<string, unknown>;
    } catch {
      results = {};
    }
  }
  results.contended = c;
  writeFileSync(jsonPath, JSON.stringify(results, null, 2) + '\n');
  const mdPath = join(outDir, 'results.md');
  const md = contendedMarkdown(c);
  const old = existsSync(mdPath) ? readFileSync(mdPath, 'utf8') : '';
  const start = old.indexOf(CONTENDED_START);
  const end = old.indexOf(CONTENDED_END);
  let next: string;
  if (start >= 0 && end > start) {
    const after = old.slice(end + CONTENDED_END.length).replace(/^\n+/, '');
    next = old.slice(0, start) + md + (after ? `\n${after}` : '');
  } else {
    next = old ? `${old.replace(/\n*$/, '\n\n')}${md}` : md;
  }
  writeFileSync(mdPath, next);
}
