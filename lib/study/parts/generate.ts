/** The generation parts: each model synthesizes every class from seeds, judged by another model. */
import { join } from 'node:path';
import { agreement, diversity } from '../../eval/metrics.js';
import { writePng } from '../../images.js';
import type { SeedKind } from '../../seeds.js';
import { generate } from '../../tasks/generate.js';
import { slice } from '../../tensor.js';
import { netteName, verdict } from '../judge.js';
import { judgeLabel, mean, modelKey, pad, round, slug, taskOptions, type PartSpec, type StudyContext } from './common.js';
import type { PartRecord } from './store.js';

/** The robust model from the three seed kinds, and the standard one from the class-conditional normal seeds. */
export const GENERATIONS: ReadonlyArray<readonly ['robust' | 'standard', SeedKind]> = [
  ['robust', 'uniform'],
  ['robust', 'normal'],
  ['robust', 'mvn'],
  ['standard', 'mvn'],
];

export function generateParts(s: StudyContext): PartSpec[] {
  return GENERATIONS.map(([role, kind]) => generatePart(s, role, kind));
}

function generatePart(s: StudyContext, role: 'robust' | 'standard', kind: SeedKind): PartSpec {
  const { cfg, data, ids, classIdx } = s;
  const batch = s.run.batch;
  return {
    name: `generate-${role}-${kind}`,
    task: 'generate',
    steps: data.classes.length * cfg.generatePerClass * cfg.settings.generate.iterations,
    needsSeeds: kind !== 'uniform',
    key: { ...modelKey(s, 'generate', role), seed: kind, perClass: cfg.generatePerClass, randomSeed: cfg.randomSeed, classes: classIdx, seeds: kind === 'uniform' ? null : s.seedsKey },
    run: async (ctx) => {
      const clf = await s.models.get(role);
      const judge = await s.models.get(s.judgeOf(role));
      const r = await generate({
        classifier: clf,
        classes: classIdx,
        count: cfg.generatePerClass,
        seed: kind,
        seeds: s.seeds(),
        randomSeed: cfg.randomSeed,
        ...taskOptions(s, 'generate', classIdx.length * cfg.generatePerClass),
        onProgress: ctx.onProgress,
      });
      const self = await verdict(clf, r.images, r.targets, batch, s.signal);
      const after = await verdict(judge, r.images, r.targets, batch, s.signal);
      const before = await verdict(judge, r.starts, r.targets, batch, s.signal);
      const items: PartRecord['items'] = [];
      const files: string[] = [];
      for (let i = 0; i < r.targets.length; i++) {
        const name = netteName(r.targets[i]!);
        const base = `${pad(i)}-${slug(name)}`;
        await writePng(join(ctx.dir, `${base}-seed.png`), r.starts, i);
        await writePng(join(ctx.dir, `${base}.png`), r.images, i);
        files.push(`${ctx.rel}/${base}-seed.png`, `${ctx.rel}/${base}.png`);
        items.push({
          class: name,
          target: r.targets[i],
          seed: `${ctx.rel}/${base}-seed.png`,
          file: `${ctx.rel}/${base}.png`,
          self: netteName(self.preds[i]!),
          judge: netteName(after.preds[i]!),
          seedJudge: netteName(before.preds[i]!),
          judgeConfidence: round(after.confidence[i]!),
          loss: round(r.losses[i]!),
        });
      }
      const per = cfg.generatePerClass;
      const perClass = data.classes.map((c, k) => {
        const a = k * per;
        const e = a + per;
        const t = r.targets.subarray(a, e);
        return {
          class: c.name,
          judgeAgreement: round(agreement(after.preds.subarray(a, e), t)),
          selfAgreement: round(agreement(self.preds.subarray(a, e), t)),
          seedJudgeAgreement: round(agreement(before.preds.subarray(a, e), t)),
          diversity: per > 1 ? round(diversity(slice(r.images, a, e)), 3) : null,
        };
      });
      const judgeAgreement = agreement(after.preds, r.targets);
      const seedJudge = agreement(before.preds, r.targets);
      const divs = perClass.map((p) => p.diversity).filter((d): d is number => d !== null);
      return {
        rows: [
          {
            model: role,
            modelName: ids[role]!.name,
            seed: kind,
            judge: judgeLabel(s.judgeOf(role), ids),
            images: r.targets.length,
            judgeAgreement: round(judgeAgreement),
            selfAgreement: round(agreement(self.preds, r.targets)),
            seedJudgeAgreement: round(seedJudge),
            gain: round(judgeAgreement - seedJudge),
            judgeConfidence: round(mean(after.confidence)),
            diversity: divs.length ? round(mean(divs), 3) : null,
            settings: r.settings,
            perClass,
          },
        ],
        items,
        files,
      };
    },
  };
}
