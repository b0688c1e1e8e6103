/** Image I/O with sharp: files to NCHW batches in [0, 1], batches to PNG files and grids. */
import { statSync } from 'node:fs';
import sharp, { type Sharp } from 'sharp';
import { writeFileAtomic } from './atomic-write.js';
import { RobustSynthError } from './errors.js';
import type { ImageBatch } from './tensor.js';

/** The file names readImage is meant for, by extension (what a folder of images is filtered by). */
export const IMAGE_FILE = /\.(png|jpe?g|webp|gif|tiff?|avif)$/i;

export function isImageFile(name: string): boolean {
  return IMAGE_FILE.test(name);
}

export interface ReadOptions {
  /** Channels the model wants: 1 (grey) or 3 (RGB). */
  channels: number;
  /** Output size; images are resized to cover it and centre-cropped. */
  height: number;
  width: number;
}

/** Decodes any image sharp reads (PNG, JPEG, WebP, ...) into a [1, c, h, w] batch. */
export async function readImage(path: string, o: ReadOptions): Promise<ImageBatch> {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new RobustSynthError('ERR_BAD_IMAGE', `image not found: ${path}`);
  }
  if (st.isDirectory()) throw new RobustSynthError('ERR_BAD_IMAGE', `${path} is a directory, not an image file`);
  try {
    return await decode(sharp(path, { failOn: 'truncated' }), o);
  } catch (e) {
    throw new RobustSynthError('ERR_BAD_IMAGE', `cannot read image ${path}: ${decodeFailure(e)}`, { cause: e });
  }
}

/** Same as readImage, from encoded bytes. */
export async function decodeImage(bytes: Buffer, o: ReadOptions): Promise<ImageBatch> {
  try {
    return await decode(sharp(bytes, { failOn: 'truncated' }), o);
  } catch (e) {
    throw new RobustSynthError('ERR_BAD_IMAGE', `cannot decode image: ${decodeFailure(e)}`, { cause: e });
  }
}

/**
 * A decoder's error as one line: libvips repeats its lines and prefixes them with its loader's
 * name, and sharp ends "Input file has corrupt header:" at the colon when libvips says no more.
 */
function decodeFailure(e: unknown): string {
  const raw = String((e as Error)?.message ?? e);
  const lines = [...new Set(raw.split('\n').map((l) => l.replace(/\bVips\w+:\s*/g, '').trim()).filter(Boolean))];
  const text = lines.join('; ').replace(/:\s*$/, '');
  if (/corrupt header$/.test(text)) return `${text} (the file is cut short, damaged, or not an image)`;
  return text || 'the decoder gave no reason';
}

async function decode(img: Sharp, { channels, height, width }: ReadOptions): Promise<ImageBatch> {
  let pipeline = img.rotate().resize(width, height, { fit: 'cover' }).removeAlpha();
  pipeline = channels === 1 ? pipeline.grayscale() : pipeline.toColourspace('srgb');
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  const c = info.channels;
  if (c !== channels) throw new RobustSynthError('ERR_BAD_IMAGE', `decoded ${c} channels, wanted ${channels}`);
  const plane = height * width;
  const out = new Float32Array(channels * plane);
  for (let p = 0; p < plane; p++) for (let ch = 0; ch < c; ch++) out[ch * plane + p] = data[p * c + ch]! / 255;
  return { data: out, shape: [1, channels, height, width] };
}

/** Sample i of a batch as interleaved 8-bit pixels (what sharp's raw input wants). */
export function toRaw(b: ImageBatch, i: number): { data: Buffer; width: number; height: number; channels: 1 | 3 } {
  const [, c, h, w] = b.shape;
  if (c !== 1 && c !== 3) throw new RobustSynthError('ERR_BAD_INPUT', `cannot encode ${c}-channel images`);
  const plane = h * w;
  const base = i * c * plane;
  const out = Buffer.alloc(plane * c);
  for (let p = 0; p < plane; p++) {
    for (let ch = 0; ch < c; ch++) out[p * c + ch] = Math.round(Math.min(1, Math.max(0, b.data[base + ch * plane + p]!)) * 255);
  }
  return { data: out, width: w, height: h, channels: c };
}

/** Encodes sample i as PNG, upscaled by an integer factor with nearest-neighbour (small images stay crisp). */
export async function encodePng(b: ImageBatch, i: number, scale = 1): Promise<Buffer> {
  const r = toRaw(b, i);
  let img = sharp(r.data, { raw: { width: r.width, height: r.height, channels: r.channels } });
  if (scale !== 1) img = img.resize(r.width * scale, r.height * scale, { kernel: 'nearest' });
  return img.png().toBuffer();
}

// Kept for old imports: the writer is lib/atomic-write.ts.
export { writeFileAtomic };

export async function writePng(path: string, b: ImageBatch, i = 0, scale = 1): Promise<void> {
  writeFileAtomic(path, await encodePng(b, i, scale));
}

export interface GridOptions {
  /** Images per row (default: all in one row up to 10). */
  columns?: number;
  /** Integer nearest-neighbour upscale of each cell. */
  scale?: number;
  /** Gap between cells, in output pixels. */
  gap?: number;
}

/** A contact sheet: every sample of every batch (same sample shape) in a grid, as a PNG. */
export async function gridPng(batches: ImageBatch | ImageBatch[], o: GridOptions = {}): Promise<Buffer> {
  const list = Array.isArray(batches) ? batches : [batches];
  const cells: Array<[ImageBatch, number]> = [];
  for (const b of list) for (let i = 0; i < b.shape[0]; i++) cells.push([b, i]);
  if (cells.length === 0) throw new RobustSynthError('ERR_BAD_INPUT', 'nothing to put in a grid');
  const [, c, h, w] = list[0]!.shape;
  const scale = o.scale ?? Math.max(1, Math.floor(112 / Math.max(h, w)));
  const gap = o.gap ?? 2;
  const cols = Math.min(o.columns ?? Math.min(10, cells.length), cells.length);
  const rows = Math.ceil(cells.length / cols);
  const cw = w * scale;
  const ch = h * scale;
  const W = cols * cw + (cols + 1) * gap;
  const H = rows * ch + (rows + 1) * gap;
  const out = Buffer.alloc(W * H * 3, 255);
  cells.forEach(([b, i], k) => {
    const r = toRaw(b, i);
    const x0 = gap + (k % cols) * (cw + gap);
    const y0 = gap + Math.floor(k / cols) * (ch + gap);
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) {
        const src = (Math.floor(y / scale) * w + Math.floor(x / scale)) * c;
        const dst = ((y0 + y) * W + x0 + x) * 3;
        for (let k2 = 0; k2 < 3; k2++) out[dst + k2] = r.data[src + (c === 1 ? 0 : k2)]!;
      }
    }
  });
  return sharp(out, { raw: { width: W, height: H, channels: 3 } }).png().toBuffer();
}
