/** `robust-synth fit-seeds`: fit the seed statistics generate() samples from (the library's fitSeeds()). */
import { existsSync, statSync } from 'node:fs';
import { Classifier } from '../../classifier.js';
import { readFashionMnist, readImageFolder, type LabeledImages } from '../../datasets.js';
import { RobustSynthError } from '../../errors.js';
import { fitSeeds, saveSeeds } from '../../seeds.js';
import * as is from '../../validate.js';
import { checkOutFile, numberFlag, required, type Command } from '../command.js';

export const fitSeedsCommand: Command = {
  name: 'fit-seeds',
  usage: '--data DIR|fashion-mnist --out FILE [--factor N] [--model NAME|PATH] [--limit N]',
  options: {
    data: { type: 'string', value: 'DIR|fashion-mnist', description: "an image folder (DIR/<class>/<image files>), or the embedded Fashion-MNIST training set" },
    out: { type: 'string', value: 'FILE', description: 'the seed file to write' },
    factor: { type: 'string', value: 'N', description: 'downsampling factor of the statistics (default: 4 for fashion-mnist and at 112 pixels and up, else 2)' },
    model: { type: 'string', default: 'fashion-robust', value: 'NAME|PATH', description: "the model whose input shape and classes an image folder is read with" },
    limit: { type: 'string', value: 'N', description: 'images per class at most (image folders)' },
    'model-dir': { type: 'string', multiple: true, value: 'DIR', description: 'a directory to look for --model NAME in', params: ['modelDirs'] },
  },
  async run(values) {
    const data = required(values, 'data', "an image folder or 'fashion-mnist'");
    const out = checkOutFile(required(values, 'out', 'the seed file to write'));
    const factorFlag = numberFlag(values, 'factor');
    if (factorFlag !== undefined) is.integer('factor', factorFlag, { min: 1 });
    const limit = numberFlag(values, 'limit');
    if (limit !== undefined) is.integer('limit', limit, { min: 1 });
    let ds: LabeledImages;
    let factor: number;
    if (data === 'fashion-mnist') {
      ds = readFashionMnist('train');
      factor = factorFlag ?? 4; // measured: see models/README.md
    } else {
      if (!existsSync(data) || !statSync(data).isDirectory()) {
        throw new RobustSynthError('ERR_BAD_INPUT', `--data must be a directory of class folders (DIR/<class>/<image files>) or 'fashion-mnist', got ${data}`);
      }
      const card = Classifier.card(String(values.model), (values['model-dir'] as string[] | undefined) ?? []);
      const [c, h, w] = card?.inputShape ?? [3, 224, 224];
      ds = await readImageFolder(data, { channels: c, height: h, width: w, classes: card?.classes ?? [], limitPerClass: limit, onSkip: (p, why) => console.error(`skipped ${p}: ${why}`) });
      factor = factorFlag ?? (h >= 112 ? 4 : 2);
    }
    const model = fitSeeds(ds, { factor, source: data });
    saveSeeds(out, model);
    console.log(`fitted ${model.classes.length} classes on ${ds.images.shape[0]} images (factor ${factor}) -> ${out}`);
    return 0;
  },
};
