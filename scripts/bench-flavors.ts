/**
 * One PGD workload timed on whichever LibTorch this machine resolves, with the settings the
 * kernel self-check chose: for comparing LibTorch flavors back to back (bench/README.md, "LibTorch
 * 2.6 against 1.13"): run it here and in the Debian 13 root, one after the other.
 *
 *   tsx scripts/bench-flavors.ts [--model fashion-robust] [--shape 1,28,28] [--batch 64] [--steps 10] [--runs 5] [--threads 1]
 *
 * Prints one JSON line: the median and the spread of ms per step, the LibTorch, the kernel settings.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { bindingInfo } from '../binding/index.js';
import { Classifier, setThreads } from '../lib/index.js';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: 'fashion-robust' },
    shape: { type: 'string', default: '1,28,28' },
    batch: { type: 'string', default: '64' },
    steps: { type: 'string', default: '10' },
    runs: { type: 'string', default: '5' },
    threads: { type: 'string', default: '1' },
  },
});
const shape = a.shape!.split(',').map(Number) as [number, number, number];
const n = Number(a.batch);
setThreads(Number(a.threads));
const load = loadavg().map((x) => Number(x.toFixed(2)));
const clf = await Classifier.load(a.model!, { device: 'cpu', inputShape: shape });
const size = shape[0] * shape[1] * shape[2];
const x0 = { data: new Float32Array(n * size).map((_, i) => (Math.sin(i * 12.9898) + 1) / 2), shape: [n, ...shape] as [number, number, number, number] };
const targets = Array.from({ length: n }, (_, i) => i % clf.numClasses);
const opts = { x0, targets, eps: 2, step: 0.5, iterations: Number(a.steps) };
await clf.pgd({ ...opts, iterations: 3 }); // TorchScript's profiling runs
const perStep: number[] = [];
for (let r = 0; r < Number(a.runs); r++) {
  const t = performance.now();
  await clf.pgd(opts);
  perStep.push((performance.now() - t) / Number(a.steps));
}
perStep.sort((x, y) => x - y);
const info = bindingInfo()!;
console.log(JSON.stringify({
  model: a.model, batch: n, threads: Number(a.threads), msPerStep: Number(perStep[perStep.length >> 1]!.toFixed(1)),
  min: Number(perStep[0]!.toFixed(1)), max: Number(perStep.at(-1)!.toFixed(1)), torch: info.record.torchVersion,
  kernels: info.kernels && { fuser: info.kernels.fuser, isaCap: info.kernels.isaCap, mkldnn: info.kernels.mkldnn, status: info.kernels.status },
  preparation: { channelsLast: clf.preparation.channelsLast, freeze: clf.preparation.freeze }, loadavgStart: load, loadavgEnd: loadavg().map((x) => Number(x.toFixed(2))),
}));
await clf.dispose();
