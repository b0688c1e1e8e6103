/**
 * The playground's uploads: read from a multipart request, checked whole by sharp (PNG, JPEG or
 * WebP, bounded bytes and pixels), and kept in memory (the latest MAX_UPLOADS), each owned by
 * the client that sent it. A job takes the upload's bytes when it is submitted, so newer uploads
 * never make a waiting job fail.
 */
import { randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import sharp, { type Metadata } from 'sharp';
import { httpError } from './http-errors.js';

export const UPLOAD_FORMATS = ['png', 'jpeg', 'webp'];
export const MAX_UPLOADS = 64;
export const MAX_UPLOAD_PIXELS = 40_000_000;

export interface Upload {
  id: string;
  /** The client that sent it. */
  owner: string;
  name: string;
  format: string;
  width: number;
  height: number;
  bytes: Buffer;
}

export class UploadStore {
  readonly #uploads = new Map<string, Upload>();

  add(up: Upload): void {
    this.#uploads.set(up.id, up);
    for (const old of this.#uploads.keys()) {
      if (this.#uploads.size <= MAX_UPLOADS) break;
      this.#uploads.delete(old);
    }
  }

  /** The client's own upload; another client's is as good as missing. */
  get(id: string, owner: string): Upload | undefined {
    const up = this.#uploads.get(id);
    return up && up.owner === owner ? up : undefined;
  }
}

/** Reads and checks the image of a POST /api/uploads; the Upload (with a new unguessable id) for `owner`. */
export async function readUpload(req: FastifyRequest, owner: string, maxUploadBytes: number): Promise<Upload> {
  if (!req.isMultipart()) throw httpError(415, 'ERR_BAD_INPUT', 'upload an image as multipart/form-data (field "image")');
  const part = await req.file();
  if (!part) throw httpError(400, 'ERR_BAD_IMAGE', 'no file in the upload (field "image")');
  const tooLarge = () => httpError(413, 'ERR_BAD_IMAGE', `the upload is larger than ${(maxUploadBytes / 1024 / 1024).toFixed(1)} MB`);
  let bytes: Buffer;
  try {
    bytes = await part.toBuffer();
  } catch (e) {
    if ((e as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') throw tooLarge();
    throw e;
  }
  // The limit can cut the stream on its last chunk without toBuffer() noticing: check again.
  if (part.file.truncated || bytes.length > maxUploadBytes) throw tooLarge();
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: MAX_UPLOAD_PIXELS }).metadata();
  } catch {
    throw httpError(415, 'ERR_BAD_IMAGE', 'not an image sharp can read (PNG, JPEG or WebP expected)');
  }
  if (!meta.format || !UPLOAD_FORMATS.includes(meta.format)) {
    throw httpError(415, 'ERR_BAD_IMAGE', `${meta.format ?? 'unknown'} images are not accepted; upload a PNG, JPEG or WebP`);
  }
  if (!meta.width || !meta.height || meta.width * meta.height > MAX_UPLOAD_PIXELS) {
    throw httpError(413, 'ERR_BAD_IMAGE', `the image has ${meta.width}x${meta.height} pixels; at most ${MAX_UPLOAD_PIXELS / 1e6} megapixels are accepted`);
  }
  try {
    // Decode it all once (a small copy), so that a truncated or corrupt file is refused now.
    await sharp(bytes, { failOn: 'truncated', limitInputPixels: MAX_UPLOAD_PIXELS }).resize(32, 32, { fit: 'inside' }).raw().toBuffer();
  } catch (e) {
    throw httpError(415, 'ERR_BAD_IMAGE', `the ${meta.format} image cannot be decoded: ${firstLine((e as Error).message)}`);
  }
  return {
    id: randomBytes(16).toString('base64url'),
    owner,
    name: (part.filename || 'image').replace(/\.[a-z0-9]+$/i, '').replace(/[^A-Za-z0-9_-]+/g, '-').slice(0, 40) || 'image',
    format: meta.format,
    width: meta.width,
    height: meta.height,
    bytes,
  };
}

/** libvips' first line (the rest can name its own source files). */
function firstLine(s: string): string {
  return s.split('\n')[0]!.slice(0, 200);
}
