// scripts/gpu-check.sh, step 4: ResNet50 224 PGD steps per second on one device, native loop
// against the same loop in eager PyTorch (eager.py), fp32 and bf16, at several batch sizes.
// Prints and writes one JSON object; image-steps/s = batch * 1000 / ms per step.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({ options: {
  device: { type: 'string', default: 'cuda' }, model: { type: 'string' }, out: { type: 'string' },
  batches: { type: 'string', default: '1,8,64,256' }, steps: { type: 'string', default: '20' }, python: { type: 'string', default: 'python3' },
} });
const { Classifier } = await import(new URL('../../dist/lib/index.js', import.meta.url));
const steps = Number(a.steps);
const rows = [];
const clf = await Classifier.load(a.model, { device: a.device });
for (const b of a.batches.split(',').map(Number)) {
  for (const bf16 of [false, true]) {
    const x0 = { data: new Float32Array(b * 3 * 224 * 224).fill(0.5), shape: [b, 3, 224, 224] };
    const targets = new Array(b).fill(0);
    await clf.pgd({ x0, targets, eps: 40, step: 1, iterations: 3, bf16 }); // warm-up
    const t0 = performance.now();
    const r = await clf.pgd({ x0, targets, eps: 40, step: 1, iterations: steps, bf16, useBest: false });
    const nativeMs = r.stats?.msPerStep ?? (performance.now() - t0) / steps;
    let eagerMs = null;
    try {
      const out = execFileSync(a.python, [new URL('./eager.py', import.meta.url).pathname, '--model', a.model, '--device', a.device, '--batch', String(b), '--steps', String(steps), ...(bf16 ? ['--bf16'] : [])], { encoding: 'utf8' });
      eagerMs = JSON.parse(out.trim().split('\n').at(-1)).msPerStep;
    } catch (e) {
      console.error(`eager.py failed at batch ${b}: ${String(e.message).split('\n')[0]}`);
    }
    const row = { batch: b, bf16, nativeMs, eagerMs, nativeImageStepsPerS: (b * 1000) / nativeMs, eagerImageStepsPerS: eagerMs ? (b * 1000) / eagerMs : null, nativeOverEager: eagerMs ? eagerMs / nativeMs : null };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
}
await clf.dispose();
const result = { device: a.device, steps, rows, graphs: 'not measured: CUDA graph capture is not implemented yet' };
if (a.out) writeFileSync(a.out, JSON.stringify(result, null, 2) + '\n');
