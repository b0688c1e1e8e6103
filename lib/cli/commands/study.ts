/**
 * `robust-synth study`: the study at 224x224 from two checkpoints and an Imagenette folder
 * (lib/study's runStudy()): generation, inpainting, super-resolution and translation by a robust
 * and a standard ResNet50, judged, measured, and put on one HTML page. Resumable by parts.
 */
import { resolve } from 'node:path';
import { setThreads, type Device } from '../../classifier.js';
import { formatDuration, progressLine } from '../../progress.js';
import { RobustSynthError } from '../../errors.js';
import * as is from '../../validate.js';
import { checkOutDir, numberFlag, required, type Command } from '../command.js';

export const studyCommand: Command = {
  name: 'study',
  usage: '--robust R.pt --standard S.pt --data DIR [--judge J.pt] [--quick] [--device D] [--out DIR]',
  options: {
    robust: { type: 'string', value: 'PATH', description: 'the robust ResNet50 (exported by models/export_resnet50.py --madry; models/README.md)' },
    standard: { type: 'string', value: 'PATH', description: 'the standard ResNet50 (exported with --torchvision)' },
    data: { type: 'string', value: 'DIR', description: "Imagenette: DIR/train/<wnid>/ and DIR/val/<wnid>/ (as imagenette2.tgz unpacks), or DIR/<wnid>/ (split deterministically)" },
    judge: { type: 'string', value: 'PATH', description: "a third classifier that judges every image (default: each model judges the other's)" },
    quick: { type: 'boolean', default: false, description: 'fewer images and PGD steps (stated on the page): 5 minutes on an idle 2-core CPU with native bf16, 8-9 in fp32 (docs/study.md)' },
    device: { type: 'string', default: 'auto', value: 'cpu|cuda|cuda:N|auto', description: 'where to compute' },
    out: { type: 'string', default: 'robust-synth-study', value: 'DIR', description: 'where report.html, report.json, report.md, parts/ and the seed file go' },
    batch: { type: 'string', value: 'N', description: 'the largest device batch (default 8); each part splits its images into equal batches no larger, so no padded row is computed; parts made at another batch run again' },
    threads: { type: 'string', value: 'N|auto', description: 'CPU threads for the compute (default: auto); parts made with another count run again' },
    bf16: { type: 'boolean', description: 'synthesize in bf16 autocast (the default on a CPU with native bf16: AVX512_BF16 or AMX)' },
    fp32: { type: 'boolean', description: 'synthesize in fp32 (the default on a GPU and on a CPU without native bf16)' },
    'model-dir': { type: 'string', multiple: true, value: 'DIR', description: 'a directory to look for model names in', params: ['modelDirs'] },
    'seed-images': { type: 'string', value: 'N', description: 'training images per class the seeds are fitted on (default: all; --quick: 100)', params: ['seedImages'] },
    iterations: { type: 'string', value: 'N', description: "(testing) every task's PGD steps; the step grows to keep the reference's longest path" },
    'per-class': { type: 'string', value: 'N', description: '(testing) images per class in every task', params: ['perClass'] },
    classes: { type: 'string', value: 'N', description: '(testing) only the first N Imagenette classes' },
  },
  async run(values) {
    const robust = required(values, 'robust', 'the robust model, a .pt exported by models/export_resnet50.py');
    const standard = required(values, 'standard', 'the standard model, a .pt exported by models/export_resnet50.py');
    const data = required(values, 'data', 'the Imagenette folder');
    const out = checkOutDir(resolve(String(values.out)));
    if (values.fp32 && values.bf16) throw new RobustSynthError('ERR_BAD_INPUT', '--fp32 and --bf16 exclude each other');
    const threads = values.threads === 'auto' ? 'auto' : numberFlag(values, 'threads');
    if (typeof threads === 'number') is.integer('threads', threads, { min: 1, max: 1024 });
    if (threads !== undefined) setThreads(threads);
    const { runStudy } = await import('../../study/index.js');
    // A bar on a terminal; elsewhere a line at each part's start, every 5 % and at least every 30 s.
    const bar = progressLine('study', { everyPct: 5, width: 20 });
    const ac = new AbortController();
    const onSigint = () => {
      bar.log('study: interrupted; finished parts are kept, rerun the same command to resume');
      ac.abort();
    };
    process.once('SIGINT', onSigint);
    try {
      const r = await runStudy({
        robust,
        standard,
        data,
        out,
        judge: values.judge === undefined ? undefined : String(values.judge),
        quick: Boolean(values.quick),
        device: String(values.device) as Device,
        modelDirs: (values['model-dir'] as string[] | undefined) ?? [],
        batch: numberFlag(values, 'batch'),
        bf16: values.fp32 ? false : values.bf16 ? true : undefined,
        seedImages: numberFlag(values, 'seed-images'),
        iterations: numberFlag(values, 'iterations'),
        perClass: numberFlag(values, 'per-class'),
        classes: numberFlag(values, 'classes'),
        signal: ac.signal,
        onLog: (m) => bar.log(`study: ${m}`),
        onProgress: (p) => {
          const pct = p.stepsTotal ? (100 * p.stepsDone) / p.stepsTotal : 100;
          const eta = p.etaMs === undefined ? '--' : formatDuration(p.etaMs);
          bar.update(pct, `of ${p.stepsTotal} PGD image-steps, part ${p.partIndex}/${p.partsToRun} ${p.part}, elapsed ${formatDuration(p.elapsedMs)}, ETA ${eta}`, p.part);
        },
      });
      bar.done();
      console.log(
        `study: ${r.ran.length} part(s) ran, ${r.skipped.length} skipped (finished earlier with the same settings), in ${formatDuration(r.report.seconds * 1000)}\n` +
          `report: ${r.files.html} (also report.json, report.md)`,
      );
      return 0;
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
  },
};
