// An output directory's files under misuse: the atomic writer never leaves a temp file behind,
// a manifest never deletes another process's temp files, and a manifest that cannot be read is
// an error that leaves the file as it is.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Manifest } from '../lib/cli/task-command.js';
import { writeFileAtomic } from '../lib/images.js';
import { tempDir } from './helpers.js';

const CLI = join(import.meta.dirname, '../lib/cli/index.ts');
const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', CLI, ...args], { encoding: 'utf8', timeout: 300_000 });
const HOST = (hostname().toLowerCase().replace(/[^a-z0-9-]+/g, '-') || 'host').slice(0, 64);

describe('atomic writes', () => {
  it('a write that fails leaves no temp file and the target as it was', () => {
    const dir = tempDir();
    // The target is a non-empty directory: the final rename fails.
    const target = join(dir, 'out.png');
    mkdirSync(target);
    writeFileSync(join(target, 'keep'), 'x');
    expect(() => writeFileAtomic(target, Buffer.alloc(1000, 7))).toThrow();
    expect(readdirSync(dir)).toEqual(['out.png']);
    expect(readdirSync(target)).toEqual(['keep']);
  });

  it('replaces the file whole, and two writes of one path never share a temp file', () => {
    const dir = tempDir();
    const path = join(dir, 'a.json');
    writeFileAtomic(path, 'first');
    writeFileAtomic(path, 'second, longer');
    expect(readFileSync(path, 'utf8')).toBe('second, longer');
    expect(readdirSync(dir)).toEqual(['a.json']);
  });
});

describe('Manifest', () => {
  it("never deletes another process's temp files; removes those of this host's dead processes", () => {
    const dir = tempDir();
    // A live process of this host (our parent), a process of another host, and a file of another tool.
    const live = `x.png.${HOST}-${process.ppid}.0123456789ab.partial`;
    const otherHost = `y.png.some-other-host-${process.pid}.0123456789ab.partial`;
    const foreign = 'upload.partial';
    // A dead process of this host: a child that has exited.
    const deadPid = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    const dead = `z.png.${HOST}-${deadPid}.0123456789ab.partial`;
    for (const f of [live, otherHost, foreign, dead]) writeFileSync(join(dir, f), 'partial');
    const m = new Manifest(dir);
    expect(m.entries).toEqual([]);
    expect(readdirSync(dir).sort()).toEqual([foreign, live, otherHost].sort());
  });

  it('a manifest.json without entries, or not JSON, is ERR_BAD_INPUT (exit 2) and is never overwritten', () => {
    for (const text of ['{"note": "mine"}\n', 'not json at all', '', '{"entries": [{"name": "x"}]}']) {
      const out = tempDir();
      writeFileSync(join(out, 'manifest.json'), text);
      expect(() => new Manifest(out), JSON.stringify(text)).toThrow(expect.objectContaining({ code: 'ERR_BAD_INPUT' }));
      const r = cli(['generate', '--class', 'Bag', '--iterations', '2', '--threads', '1', '--out', out]);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/manifest\.json is not a robust-synth manifest .*\[ERR_BAD_INPUT\]/);
      expect(readFileSync(join(out, 'manifest.json'), 'utf8')).toBe(text);
      expect(readdirSync(out)).toEqual(['manifest.json']);
    }
  });
});
