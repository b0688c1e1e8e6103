/** The translation parts: validation images moved to another class by each model, judged by another. */
import { join, relative } from 'node:path';
import { agreement } from '../../eval/metrics.js';
import { writePng } from '../../images.js';
import { translate } from '../../tasks/translate.js';
import { concat, slice } from '../../tensor.js';
import { SIZE } from '../data.js';
import { netteName, verdict } from '../judge.js';
import { judgeLabel, mean, modelKey, pad, round, slug, taskOptions, type PartSpec, type StudyContext } from './common.js';
import type { PartRecord } from './store.js';

export function translateParts(s: StudyContext): PartSpec[] {
  return [translatePart(s, 'robust'), translatePart(s, 'standard')];
}

/** Translation pairs [source image, target class]: each source to the next class, or to every other class. */
export function translationPairs(labels: Int32Array, classIdx: number[], to: 'next' | 'all'): Array<[number, number]> {
  const n = classIdx.length;
  const pairs: Array<[number, number]> = [];
  for (let i = 0; i < labels.length; i++) {
    const a = classIdx.indexOf(labels[i]!);
    if (to === 'next') {
      if (n > 1) pairs.push([i, classIdx[(a + 1) % n]!]);
    } else for (const b of classIdx) if (b !== labels[i]) pairs.push([i, b]);
  }
  return pairs;
}

function translatePart(s: StudyContext, role: 'robust' | 'standard'): PartSpec {
  const { cfg, ids, data, classIdx } = s;
  const batch = s.run.batch;
  const n = classIdx.length;
  const pairCount = n < 2 ? 0 : n * cfg.translatePerClass * (cfg.translateTo === 'next' ? 1 : n - 1);
  return {
    name: `translate-${role}`,
    task: 'translate',
    steps: pairCount * cfg.settings.translate.iterations,
    needsSeeds: false,
    key: { ...modelKey(s, 'translate', role), val: s.valKey, to: cfg.translateTo, classes: classIdx },
    run: async (ctx) => {
      const { translate: src } = await s.val();
      const pairs = translationPairs(src.labels, classIdx, cfg.translateTo);
      if (!pairs.length) return { rows: [], items: [], files: [] };
      const clf = await s.models.get(role);
      const judge = await s.models.get(s.judgeOf(role));
      const x = concat(pairs.map(([i]) => slice(src.images, i, i + 1)));
      const to = Int32Array.from(pairs, ([, b]) => b);
      const from = Int32Array.from(pairs, ([i]) => src.labels[i]!);
      const r = await translate({ classifier: clf, image: x, to: Array.from(to), ...taskOptions(s, 'translate', pairs.length), onProgress: ctx.onProgress });
      const self = await verdict(clf, r.images, to, batch, s.signal);
      const j = await verdict(judge, r.images, to, batch, s.signal);
      const size = SIZE[0] * SIZE[1] * SIZE[2];
      const dist = pairs.map((_, p) => {
        let d = 0;
        for (let k = p * size; k < (p + 1) * size; k++) d += (r.images.data[k]! - x.data[k]!) ** 2;
        return Math.sqrt(d);
      });
      const items: PartRecord['items'] = [];
      const files: string[] = [];
      const sources = new Map<number, string>();
      for (let p = 0; p < pairs.length; p++) {
        const [i, b] = pairs[p]!;
        const a = netteName(src.labels[i]!);
        if (!sources.has(i)) {
          const f = `${pad(i)}-${slug(a)}-source.png`;
          await writePng(join(ctx.dir, f), src.images, i);
          files.push(`${ctx.rel}/${f}`);
          sources.set(i, `${ctx.rel}/${f}`);
        }
        const f = `${pad(p)}-${slug(a)}-to-${slug(netteName(b))}.png`;
        await writePng(join(ctx.dir, f), r.images, p);
        files.push(`${ctx.rel}/${f}`);
        items.push({
          from: a,
          to: netteName(b),
          source: relative(data.root, src.files[i]!),
          sourceImage: sources.get(i),
          file: `${ctx.rel}/${f}`,
          self: netteName(self.preds[p]!),
          judge: netteName(j.preds[p]!),
          l2: round(dist[p]!, 3),
        });
      }
      return {
        rows: [
          {
            model: role,
            modelName: ids[role]!.name,
            judge: judgeLabel(s.judgeOf(role), ids),
            eps: r.settings.eps,
            pairs: pairs.length,
            judgeTargetAgreement: round(agreement(j.preds, to)),
            judgeSourceAgreement: round(agreement(j.preds, from)),
            selfTargetAgreement: round(agreement(self.preds, to)),
            judgeConfidence: round(mean(j.confidence)),
            meanL2: round(mean(dist), 3),
            settings: r.settings,
          },
        ],
        items,
        files,
      };
    },
  };
}
