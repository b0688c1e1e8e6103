// scripts/gpu-check.sh, step 3: the device under test against the CPU, in one process, on the
// same inputs. fp32 after 20 steps must agree within 1e-3 (max abs pixel difference); bf16
// differences are reported, not judged. With --device cpu it compares the CPU with itself
// through the same code, so the script is exercised end to end on machines without a GPU; that
// comparison must be exact (0 difference). The CPU's intra-op thread count is fixed (--threads)
// for both runs: the adaptive default can pick another count for each run on a loaded machine,
// and another count sums in another order (ResNet50 rows then differed by 1.35e-2).
// Runs on node alone (imports the compiled dist/), no TypeScript toolchain needed.
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({ options: { device: { type: 'string', default: 'cuda' }, model: { type: 'string' }, out: { type: 'string' }, steps: { type: 'string', default: '20' }, threads: { type: 'string' } } });
const { Classifier, buildInfo, setThreads, threadPolicy } = await import(new URL('../../dist/lib/index.js', import.meta.url));
const steps = Number(a.steps);
const cpuOnly = a.device === 'cpu';
// CPU against CPU: 1 thread (a test beside other work); against a GPU: the CPU's cores, up to 8.
const threads = a.threads === undefined ? (cpuOnly ? 1 : Math.min(8, availableParallelism())) : Number(a.threads);
if (!Number.isInteger(threads) || threads < 1) { console.error(`compare: --threads must be an integer >= 1, got ${a.threads}`); process.exit(2); }
setThreads(threads);
// fp32 limit: the same code on the same device with the same threads must give the same bits.
const limit = cpuOnly ? 0 : 1e-3;
const rows = [];
let ok = true;

function maxAbs(x, y) {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}
function batch(shape, seed) {
  const n = shape.reduce((p, q) => p * q, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; data[i] = s / 2 ** 32; }
  return { data, shape };
}

for (const [name, path] of [['fashion-robust', 'fashion-robust'], ['resnet50', a.model]]) {
  if (!path) continue;
  const cpu = await Classifier.load(path, { device: 'cpu' });
  const dev = await Classifier.load(path, { device: a.device });
  const [c, h, w] = cpu.inputShape;
  const n = name === 'resnet50' ? 2 : 8;
  const x0 = batch([n, c, h, w], 7);
  const targets = Array.from({ length: n }, (_, i) => (i * 3 + 1) % cpu.numClasses);
  const cfg = name === 'resnet50' ? { eps: 40, step: 1 } : { eps: 8, step: 0.5 };
  const ref = await cpu.pgd({ x0, targets, ...cfg, iterations: steps });
  for (const bf16 of [false, true]) {
    const r = await dev.pgd({ x0, targets, ...cfg, iterations: steps, bf16 });
    const diff = maxAbs(ref.images.data, r.images.data);
    const samePred = r.predictions.every((p, i) => p === ref.predictions[i]);
    const row = { model: name, device: dev.device, batch: n, steps, bf16, threads: threadPolicy().current, maxAbsDiff: diff, predictionsAgree: samePred, limit: bf16 ? null : limit };
    if (!bf16 && (diff > limit || (cpuOnly && !samePred))) { ok = false; row.fail = true; }
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  await cpu.dispose();
  await dev.dispose();
}
const result = { ok, device: a.device, threads: { fixed: threads, policy: threadPolicy() }, limit, build: (({ torchVersion, variant, cudaAvailable }) => ({ torchVersion, variant, cudaAvailable }))(buildInfo()), rows };
if (a.out) writeFileSync(a.out, JSON.stringify(result, null, 2) + '\n');
if (!ok) { console.error(`compare: fp32 results differ from the CPU by more than ${limit}`); process.exit(1); }
