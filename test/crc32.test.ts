// One CRC-32 for the ZIP writer and the LibTorch archive reader: zlib's where Node has it, a
// table otherwise, with the same results, incremental.
import { randomBytes } from 'node:crypto';
import { expect, it } from 'vitest';
import { crc32, crc32Table } from '../lib/crc32.js';

it('crc32: the check value, incremental, and the table equal to zlib', () => {
  expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  expect(crc32Table(Buffer.from('123456789'))).toBe(0xcbf43926);
  expect(crc32(new Uint8Array(0))).toBe(0);
  const b = randomBytes(70_001);
  const whole = crc32Table(b);
  expect(crc32(b)).toBe(whole);
  expect(crc32Table(b.subarray(12_345), crc32Table(b.subarray(0, 12_345)))).toBe(whole);
  expect(crc32(b.subarray(40_000), crc32(b.subarray(0, 40_000)))).toBe(whole);
});
