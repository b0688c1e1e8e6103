/**
 * Builds assets/fashion-mnist/: the first N Fashion-MNIST test images and their labels, in the
 * data set's own gzipped IDX format, shipped in the package so that `demo` and the playground's
 * example images need no data set installed. Run from the repository root:
 *
 *   npx tsx scripts/make-fashion-examples.ts [--count 500] [--from /usr/share/datasets/fashion-mnist]
 *
 * The output is deterministic (gzip level 9, no file name or time in the header).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';

const { values } = parseArgs({ options: { count: { type: 'string', default: '500' }, from: { type: 'string', default: '/usr/share/datasets/fashion-mnist' }, out: { type: 'string', default: 'assets/fashion-mnist' } } });
const n = Number(values.count);
const images = gunzipSync(readFileSync(join(values.from!, 't10k-images-idx3-ubyte.gz')));
const labels = gunzipSync(readFileSync(join(values.from!, 't10k-labels-idx1-ubyte.gz')));
if (images.readUInt32BE(0) !== 0x803 || labels.readUInt32BE(0) !== 0x801) throw new Error('not Fashion-MNIST IDX files');
const [h, w] = [images.readUInt32BE(8), images.readUInt32BE(12)];
const head = (magic: number, dims: number[]) => {
  const b = Buffer.alloc(4 + 4 * dims.length);
  b.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  return b;
};
mkdirSync(values.out!, { recursive: true });
const img = gzipSync(Buffer.concat([head(0x803, [n, h, w]), images.subarray(16, 16 + n * h * w)]), { level: 9 });
const lab = gzipSync(Buffer.concat([head(0x801, [n]), labels.subarray(8, 8 + n)]), { level: 9 });
writeFileSync(join(values.out!, 't10k-images-idx3-ubyte.gz'), img);
writeFileSync(join(values.out!, 't10k-labels-idx1-ubyte.gz'), lab);
console.log(`wrote the first ${n} test images (${img.length + lab.length} bytes) to ${values.out}`);
