/**
 * `robust-synth translate`: image-to-image translation toward a class (the library's
 * translate()), of one file or a directory: resumable (outputs already in the manifest are
 * skipped), atomic writes, unreadable files skipped and counted (exit code 1). A directory is
 * run in device batches of exactly --batch images (a partial one padded), filled with the
 * readable images in file-name order, so each image's result depends only on it and the
 * settings: not on the folder's other files, nor on what a resumed run has left to do.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import { RobustSynthError } from '../../errors.js';
import { isImageFile } from '../../images.js';
import { slug } from '../../manifest.js';
import { progressReporter } from '../../progress.js';
import { translate } from '../../tasks/translate.js';
import { concat, type ImageBatch } from '../../tensor.js';
import * as is from '../../validate.js';
import { plural, required, type Command } from '../command.js';
import { readTaskFlags, TASK_OPTIONS, withModel } from '../task-command.js';

/** "a.txt, b.json and 3 more". */
function someNames(names: string[], shown = 5): string {
  if (names.length <= shown) return names.join(', ');
  return `${names.slice(0, shown).join(', ')} and ${names.length - shown} more`;
}

export const translateCommand: Command = {
  name: 'translate',
  usage: '--image FILE|DIR --to CLASS [options]',
  options: {
    image: { type: 'string', value: 'FILE|DIR', description: 'a source image, or a directory of them (translated in batches, resumably)' },
    to: { type: 'string', value: 'CLASS', description: 'the target class, a name or an index' },
    ...TASK_OPTIONS,
  },
  async run(values) {
    const src = required(values, 'image', 'a file or a directory');
    const to = required(values, 'to', 'a class name or index');
    const flags = readTaskFlags(values, 'out/translate');
    if (flags.batch !== undefined) is.integer('batch', flags.batch, { min: 1, max: 1 << 20 });
    if (!existsSync(src)) throw new RobustSynthError('ERR_BAD_IMAGE', `not found: ${src}`);
    return withModel(flags, async (run) => {
      const { clf, dir, manifest } = run;
      const target = clf.classIndex(to, 'to');
      const single = !statSync(src).isDirectory();
      let files = [src];
      if (!single) {
        const entries = readdirSync(src, { withFileTypes: true }).filter((e) => e.isFile() || e.isSymbolicLink());
        const others = entries.filter((e) => !isImageFile(e.name)).map((e) => e.name).sort();
        if (others.length) console.error(`ignored ${others.length} file(s) that are not images by their extension: ${someNames(others)}`);
        files = entries.filter((e) => isImageFile(e.name)).map((e) => e.name).sort().map((f) => join(src, f));
      }
      const outName = (f: string) => `${basename(f, extname(f))}-to-${slug(clf.classes[target]!)}.png`;
      const todo = files.filter((f) => !(manifest.has(outName(f)) && existsSync(join(dir, outName(f)))));
      if (todo.length < files.length) console.error(`resuming: ${files.length - todo.length} of ${files.length} already done`);
      const [, h, w] = clf.inputShape;
      // A directory always runs at a fixed batch size (the default when none is given), so that
      // neither its size nor a resume changes a result; a single file runs as one batch.
      const batch = flags.batch ?? (single ? 1 : h * w <= 64 * 64 ? 64 : 8);
      const progress = progressReporter('translate');
      let failed = 0;
      let done = files.length - todo.length;
      let next = 0;
      while (next < todo.length) {
        // Fill a batch with readable images; an unreadable one is skipped and reported.
        const ok: string[] = [];
        const imgs: ImageBatch[] = [];
        while (ok.length < batch && next < todo.length) {
          const f = todo[next++]!;
          try {
            imgs.push(await run.read(f));
            ok.push(f);
          } catch (e) {
            if (single) throw e; // one file asked for: its error, not a batch summary
            failed++;
            console.error(`\nskipped ${f}: ${(e as Error).message}`);
          }
        }
        if (!ok.length) continue;
        const base = done;
        const options = run.options({ update: (p) => progress.update({ ...p, done: base + p.done, images: files.length }), done: () => {} });
        const r = await translate({ ...options, batch, image: concat(imgs), to: target });
        await run.writeResults(r, ok.map(outName), ok);
        done += ok.length;
      }
      progress.done();
      await run.contactSheet();
      const made = todo.length - failed;
      console.log(`translated ${plural(made, 'image')} to ${clf.classes[target]} in ${dir}${failed ? `; ${failed} skipped` : ''}`);
      return failed ? 1 : 0;
    });
  },
};
