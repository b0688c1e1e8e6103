/**
 * How far apart two `robust-synth study` runs' images are, part by part: the PSNR and the mean
 * absolute difference of each image against its counterpart, and how many self and judge
 * predictions are the same. docs/study.md uses it to show what bf16 changes (against what a
 * different batch size changes between two fp32 runs).
 *
 *   npx tsx bench/study-compare.ts bench/out/study-run-A bench/out/study-run-B
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { psnr } from '../lib/eval/metrics.js';
import { readImage } from '../lib/images.js';

interface Item { file: string; self: string; judge: string }

const [a, b] = process.argv.slice(2);
if (!a || !b) {
  console.error('usage: npx tsx bench/study-compare.ts RUN_A RUN_B   (two study --out folders)');
  process.exit(2);
}
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1]!;
const size = { channels: 3, height: 224, width: 224 };
const total = { images: 0, self: 0, judge: 0 };
for (const f of readdirSync(join(a, 'parts')).filter((n) => n.endsWith('.json') && !n.endsWith('-baselines.json')).sort()) {
  const items = (dir: string) => (JSON.parse(readFileSync(join(dir, 'parts', f), 'utf8')) as { items: Item[] }).items;
  const ia = items(a);
  const ib = items(b);
  if (ia.length !== ib.length) throw new Error(`${f}: ${ia.length} images in ${a}, ${ib.length} in ${b}`);
  const ps: number[] = [];
  let mad = 0;
  let self = 0;
  let judge = 0;
  for (let i = 0; i < ia.length; i++) {
    const x = await readImage(join(a, ia[i]!.file), size);
    const y = await readImage(join(b, ib[i]!.file), size);
    ps.push(psnr(x, y, 0));
    let d = 0;
    for (let k = 0; k < x.data.length; k++) d += Math.abs(x.data[k]! - y.data[k]!);
    mad += d / x.data.length / ia.length;
    self += ia[i]!.self === ib[i]!.self ? 1 : 0;
    judge += ia[i]!.judge === ib[i]!.judge ? 1 : 0;
  }
  total.images += ia.length;
  total.self += self;
  total.judge += judge;
  const db = (v: number) => (Number.isFinite(v) ? `${v.toFixed(1)} dB` : 'identical');
  console.log(
    `${f.slice(0, -5)}: ${ia.length} images, PSNR median ${db(median(ps))} (min ${db(Math.min(...ps))}), ` +
      `mean abs difference ${(255 * mad).toFixed(2)} / 255, same self prediction ${self}/${ia.length}, same judge prediction ${judge}/${ia.length}`,
  );
}
console.log(`all parts: same self prediction ${total.self}/${total.images}, same judge prediction ${total.judge}/${total.images}`);
