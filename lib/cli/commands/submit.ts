/**
 * `robust-synth submit translate|generate`: enqueues a task as jobs for `robust-synth worker`s
 * (lib/queue/submit.ts) and follows them with a progress bar for the whole set: done, failed,
 * throughput per worker, time left. The workers return the outputs through Redis and this
 * process writes them into its own --out (or, with --shared, the workers write into --out).
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { RobustSynthError } from '../../errors.js';
import { formatDuration as duration, progressLine as renderProgress } from '../../progress.js';
import { readRedisFlags, REDIS_FLAGS } from '../queue-options.js';
import { SUBMISSION_ID } from '../../queue/keys.js';
import { checkRedis } from '../../queue/redis.js';
import {
  listImages, planGenerate, planTranslate, resolveJobSettings, resolveModelRef, submitJobs,
  type PlannedJob, type SubmitProgress, type SubmitSummary,
} from '../../queue/submit.js';
import { SEED_KINDS } from '../../seeds.js';
import * as is from '../../validate.js';
import { checkOutDir, inputShapeFlag, numberFlag, required, runCommand, type Command, type OptionSpecs, type Values } from '../command.js';

const COMMON: OptionSpecs = {
  out: { type: 'string', value: 'DIR', description: "the output directory, on this machine: the workers' results come back through Redis and are written here" },
  submission: { type: 'string', value: 'ID', description: 'the id to collect a --detach submission by (default: from this host and --out, so that submitting again finds the same jobs)' },
  shared: { type: 'boolean', default: false, description: 'the workers write into --out themselves: a directory every worker sees at the same path, inside their --allow-out' },
  ...REDIS_FLAGS,
  model: { type: 'string', default: 'fashion-robust', value: 'NAME', description: 'a model name workers know (embedded, or in their --model-dir); never a path' },
  'model-dir': { type: 'string', multiple: true, value: 'DIR', description: "where this machine finds the model's card (its hash and shape) when it is not embedded", params: ['modelDirs'] },
  'input-shape': { type: 'string', value: 'C,H,W', description: "the model's input shape, for a model without a model card" },
  eps: { type: 'string', value: 'X', description: "radius of the L2 ball PGD stays in (default: the task's setting for the model's input size)" },
  step: { type: 'string', value: 'X', description: "PGD step size (default: the task's setting)" },
  iterations: { type: 'string', value: 'N', description: "PGD steps (default: the task's setting)" },
  batch: { type: 'string', value: 'N', description: 'rows of every device batch (default: 64 below 64x64 pixels, else 8); results match a single-machine run with the same --batch' },
  bf16: { type: 'boolean', default: false, description: 'compute in bf16 autocast' },
  attempts: { type: 'string', default: '3', value: 'N', description: 'tries per job for transient errors (bad input is never retried)' },
  detach: { type: 'boolean', default: false, description: 'exit once the jobs are queued, without following them' },
  'retry-failed': { type: 'boolean', default: false, description: 'also retry jobs that failed before on bad input (otherwise reported again: same job, same input)' },
};

/** --submission, or one derived from this host and the output directory (the same run, the same id). */
export function submissionId(values: Values, out: string): string {
  const given = values.submission as string | undefined;
  if (given !== undefined) {
    if (!SUBMISSION_ID.test(given)) throw new RobustSynthError('ERR_BAD_INPUT', `--submission must be letters, digits, . _ - (at most 100), got '${given}'`);
    return given;
  }
  return `s-${createHash('sha256').update(`${hostname()}\0${out}`).digest('hex').slice(0, 20)}`;
}

/** Where the jobs' results go: `submission`, and `out` for the workers only with --shared. */
function delivery(values: Values, out: string): { submission: string; out?: string } {
  return { submission: submissionId(values, out), ...(values.shared ? { out } : {}) };
}

/** The whole set on one line (lib/progress.ts): a bar on a terminal, a line every 10 % (and at least every 30 s) elsewhere. */
function progressLine(label: string): { update: (p: SubmitProgress) => void; done: () => void } {
  const line = renderProgress(label, { width: 24 });
  return {
    update(p) {
      const todo = p.total - p.skipped;
      const pct = todo ? ((p.done + p.failed) / todo) * 100 : 100;
      const workers = p.workers.slice(0, 4).map((w) => `${w.worker} ${w.rate.toFixed(1)}/s`).join(', ');
      line.update(
        pct,
        `${p.done + p.skipped}/${p.total} done${p.skipped ? ` (${p.skipped} before)` : ''}, ${p.failed} failed, ${p.rate.toFixed(1)} img/s` +
          `${p.etaMs !== undefined && p.pending ? `, ETA ${duration(p.etaMs)}` : ''}${workers ? ` | ${workers}${p.workers.length > 4 ? ', ...' : ''}` : ''}`,
      );
    },
    done: () => line.done(),
  };
}

/** Adds the jobs (unless `collectOnly`) and follows them to the end, writing their results into --out; the exit code. */
export async function follow(values: Values, jobs: PlannedJob[], what: string, skippedFiles: Array<{ path: string; reason: string }>, collectOnly = false): Promise<number> {
  const redis = readRedisFlags(values);
  const attempts = collectOnly ? undefined : is.integer('attempts', numberFlag(values, 'attempts'), { min: 1, max: 100 });
  if (!collectOnly) await checkRedis(redis.connection, redis.url);
  for (const s of skippedFiles) console.error(`skipped ${s.path}: ${s.reason}`);
  const bar = progressLine(collectOnly ? 'collect' : 'submit');
  let summary: SubmitSummary;
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  try {
    summary = await submitJobs(jobs, {
      connection: redis.connection, queue: redis.queue, attempts, detach: Boolean(values.detach), retryFailed: Boolean(values['retry-failed']),
      out: values.shared ? undefined : resolve(String(values.out)), collectOnly, onProgress: bar.update, signal: ac.signal,
    });
  } finally {
    process.off('SIGINT', stop);
    bar.done();
  }
  const out = resolve(String(values.out));
  if (values.detach) {
    const sub = jobs[0]?.submission ?? '';
    console.log(`queued ${jobs.length} job(s) for ${what} on ${redis.queue} (${summary.added} new, ${summary.alreadyQueued} already queued, ${summary.retried} retried; ${summary.skipped} image(s) already done); submission ${sub}`);
    if (!values.shared) console.log(`collect the results with: robust-synth collect --redis URL${redis.queue === 'robust-synth' ? '' : ` --queue ${redis.queue}`} --submission ${sub} --out ${out}`);
    return skippedFiles.length ? 1 : 0;
  }
  const SHOWN = 20;
  for (const f of summary.failures.slice(0, SHOWN)) console.error(`failed ${f.source}: ${f.message} [${f.code}]`);
  if (summary.failures.length > SHOWN) {
    const codes = new Map<string, number>();
    for (const f of summary.failures) codes.set(f.code, (codes.get(f.code) ?? 0) + 1);
    console.error(`... and ${summary.failures.length - SHOWN} more failed (${[...codes].map(([c, n]) => `${n} ${c}`).join(', ')} in all)`);
  }
  const rate = summary.workers.map((w) => `${w.worker}: ${w.images} (${w.rate.toFixed(2)}/s)`).join(', ');
  console.log(
    `${what}: ${summary.done} image(s) made in ${duration(summary.elapsedMs)} (${summary.rate.toFixed(2)} img/s)` +
      `${summary.skipped ? `, ${summary.skipped} already done` : ''}${summary.failed ? `, ${summary.failed} failed` : ''}${skippedFiles.length ? `, ${skippedFiles.length} skipped` : ''}` +
      ` in ${out}${rate ? `; per worker: ${rate}` : ''}`,
  );
  return summary.failures.length || skippedFiles.length ? 1 : 0;
}

export const submitTranslateCommand: Command = {
  name: 'submit translate',
  usage: '--image FILE|DIR --to CLASS --out DIR --redis URL [options]',
  options: {
    image: { type: 'string', value: 'FILE|DIR', description: 'a source image, or a directory of them (one job each)' },
    to: { type: 'string', value: 'CLASS', description: 'the target class, a name or an index' },
    ...COMMON,
  },
  async run(values) {
    const src = required(values, 'image', 'a file or a directory');
    const to = required(values, 'to', 'a class name or index');
    const out = checkOutDir(resolve(required(values, 'out', 'the output directory')));
    const model = await resolveModelRef(String(values.model), { modelDirs: (values['model-dir'] as string[] | undefined) ?? [], inputShape: inputShapeFlag(values) });
    const target = is.classIndex(model, to, 'to');
    const settings = resolveJobSettings('translate', model.shape, {
      eps: numberFlag(values, 'eps'), step: numberFlag(values, 'step'), iterations: numberFlag(values, 'iterations'), batch: numberFlag(values, 'batch'), bf16: Boolean(values.bf16),
    });
    const { files, single } = listImages(src);
    const { jobs, skipped } = planTranslate({ model, files, to: target, settings, ...delivery(values, out) });
    if (single && skipped.length) throw new RobustSynthError('ERR_BAD_IMAGE', `cannot read image ${src}: ${skipped[0]!.reason}`);
    return follow(values, jobs, `translate to ${model.classes[target] ?? target}`, skipped);
  },
};

export const submitGenerateCommand: Command = {
  name: 'submit generate',
  usage: '--class NAME|INDEX [--class ...] [--count N] [--seed uniform|normal|mvn] --out DIR --redis URL [options]',
  options: {
    class: { type: 'string', multiple: true, value: 'NAME|INDEX', description: 'a class to generate', params: ['classes'] },
    count: { type: 'string', value: 'N', description: 'images per class (default: 1)' },
    seed: { type: 'string', default: 'mvn', value: 'uniform|normal|mvn', description: 'the seed distribution PGD starts from' },
    'random-seed': { type: 'string', value: 'N', description: "the sampler's random seed (default: 0)" },
    'per-job': { type: 'string', default: '8', value: 'N', description: 'images per job (at most --batch)', params: ['perJob'] },
    ...COMMON,
  },
  async run(values) {
    required(values, 'class', 'a class name or index; repeatable');
    const seed = is.oneOf('seed', values.seed, SEED_KINDS);
    const out = checkOutDir(resolve(required(values, 'out', 'the output directory')));
    const model = await resolveModelRef(String(values.model), { modelDirs: (values['model-dir'] as string[] | undefined) ?? [], inputShape: inputShapeFlag(values) });
    const classes = (values.class as string[]).map((c) => is.classIndex(model, c, 'classes'));
    const settings = resolveJobSettings('generate', model.shape, {
      eps: numberFlag(values, 'eps'), step: numberFlag(values, 'step'), iterations: numberFlag(values, 'iterations'), batch: numberFlag(values, 'batch'), bf16: Boolean(values.bf16),
    });
    const perJob = numberFlag(values, 'per-job') ?? 8;
    const jobs = planGenerate({
      model, classes, count: numberFlag(values, 'count') ?? 1, seed, randomSeed: numberFlag(values, 'random-seed') ?? 0,
      perJob, settings, ...delivery(values, out),
    });
    return follow(values, jobs, `generate ${classes.map((k) => model.classes[k] ?? k).join(', ')}`, []);
  },
};

const SUBCOMMANDS = [
  { cmd: submitTranslateCommand, summary: 'turn images toward another class, one job per image' },
  { cmd: submitGenerateCommand, summary: 'class-conditional generation, a few seeds per job' },
];

const USAGE = `robust-synth submit: enqueue a task for robust-synth workers and follow it to the end

Usage: robust-synth submit translate|generate [options]

Tasks:
${SUBCOMMANDS.map((s) => `  ${s.cmd.name.replace('submit ', '').padEnd(12)}${s.summary}`).join('\n')}

robust-synth submit TASK --help lists a task's options. See docs/queue.md.`;

export const submitCommand: Command = {
  name: 'submit',
  usage: 'translate|generate [options]',
  options: {},
  raw: true,
  async run(_values, argv) {
    const [task, ...rest] = argv;
    if (task === undefined) {
      console.error(USAGE);
      return 2;
    }
    if (task === '--help' || task === '-h' || task === 'help') {
      console.log(USAGE);
      return 0;
    }
    const sub = SUBCOMMANDS.find((s) => s.cmd.name === `submit ${task}`);
    if (!sub) throw new RobustSynthError('ERR_BAD_INPUT', `robust-synth submit takes a task, translate or generate, got '${task}'`);
    return runCommand(sub.cmd, sub.summary, rest);
  },
};
