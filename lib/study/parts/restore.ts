/**
 * The restoration parts, inpainting and super-resolution: the two baselines without PGD (mean or
 * diffusion fill; nearest or bicubic upsampling), then each model's result, all judged alike.
 */
import { join, relative } from 'node:path';
import { bicubic } from '../../tasks/superResolve.js';
import { agreement, diffusionFill } from '../../eval/metrics.js';
import { writePng } from '../../images.js';
import type { TaskResult } from '../../tasks/common.js';
import { defaultHole, fillHole, holeMask, inpaint, type Hole } from '../../tasks/inpaint.js';
import { downUp, superResolve } from '../../tasks/superResolve.js';
import type { ImageBatch } from '../../tensor.js';
import { SIZE } from '../data.js';
import { netteName, verdict, type Verdict } from '../judge.js';
import type { Role } from '../models.js';
import { judgeLabel, KEY_FORMAT, mean, modelKey, pad, quality, round, slug, taskOptions, type PartSpec, type StudyContext } from './common.js';
import type { PartRecord } from './store.js';

type RestoreTask = 'inpaint' | 'superResolve';

/** The hole the study inpaints: the default centred square at 224x224. */
export function studyHole(): Hole {
  return defaultHole(SIZE[1], SIZE[2]);
}

/** For each task: its baselines, then the robust and the standard model. */
export function restoreParts(s: StudyContext): PartSpec[] {
  return (['inpaint', 'superResolve'] as const).flatMap((t) => [baselinesPart(s, t), restorePart(s, t, 'robust'), restorePart(s, t, 'standard')]);
}

const partName = (task: RestoreTask) => (task === 'inpaint' ? 'inpaint' : 'super-resolve');

/** What a restoration depends on besides the models: the images and the hole or factor. */
function inputKey(s: StudyContext, task: RestoreTask) {
  return { val: s.valKey, ...(task === 'inpaint' ? { hole: studyHole() } : { factor: s.cfg.srFactor }) };
}

function baselinesPart(s: StudyContext, task: RestoreTask): PartSpec {
  const { ids, data, baselineJudges } = s;
  const batch = s.run.batch;
  const hole = studyHole();
  const mask = holeMask(hole, SIZE[1], SIZE[2]);
  // No PGD and no autocast: only the judging's device, threads, batch and engine matter.
  const { dtype: _dtype, ...judging } = s.run;
  return {
    name: `${partName(task)}-baselines`,
    task: 'baselines',
    steps: 0,
    needsSeeds: false,
    key: { format: KEY_FORMAT, task, baselines: true, judges: baselineJudges.map((r) => ids[r]!.sha256), run: judging, ...inputKey(s, task) },
    run: async (ctx) => {
      const { restore } = await s.val();
      const methods: Array<[string, string, ImageBatch]> =
        task === 'inpaint'
          ? [
              ['mean fill', 'mean-fill', fillHole(restore.images, mask)],
              ['diffusion fill', 'diffusion-fill', diffusionFill(restore.images, mask.data)],
            ]
          : [
              ['nearest', 'nearest', downUp(restore.images, s.cfg.srFactor)],
              ['bicubic', 'bicubic', await bicubic(restore.images, s.cfg.srFactor)],
            ];
      const region = task === 'inpaint' ? mask.data : undefined;
      const rows: PartRecord['rows'] = [];
      const items: PartRecord['items'] = [];
      const files: string[] = [];
      const verdicts = new Map<string, Map<Role, Verdict>>();
      for (const [label, , x] of methods) {
        const m = new Map<Role, Verdict>();
        for (const role of baselineJudges) m.set(role, await verdict(await s.models.get(role), x, restore.labels, batch, s.signal));
        verdicts.set(label, m);
        const q = quality(x, restore.images, region);
        for (const role of baselineJudges) {
          rows.push({ method: `${label} (baseline)`, baseline: true, judge: judgeLabel(role, ids), psnr: q.psnr, ssim: q.ssim, judgeAccuracy: round(agreement(m.get(role)!.preds, restore.labels)) });
        }
      }
      for (let i = 0; i < restore.labels.length; i++) {
        const name = netteName(restore.labels[i]!);
        const base = `${pad(i)}-${slug(name)}`;
        await writePng(join(ctx.dir, `${base}-original.png`), restore.images, i);
        files.push(`${ctx.rel}/${base}-original.png`);
        const item: Record<string, unknown> = { class: name, source: relative(data.root, restore.files[i]!), original: `${ctx.rel}/${base}-original.png` };
        for (const [label, fileTag, x] of methods) {
          await writePng(join(ctx.dir, `${base}-${fileTag}.png`), x, i);
          files.push(`${ctx.rel}/${base}-${fileTag}.png`);
          item[fileTag] = `${ctx.rel}/${base}-${fileTag}.png`;
          item[`${fileTag}Judge`] = Object.fromEntries(baselineJudges.map((role) => [role, netteName(verdicts.get(label)!.get(role)!.preds[i]!)]));
        }
        items.push(item);
      }
      return { rows, items, files };
    },
  };
}

function restorePart(s: StudyContext, task: RestoreTask, role: 'robust' | 'standard'): PartSpec {
  const { ids, data, cfg } = s;
  const batch = s.run.batch;
  const hole = studyHole();
  const mask = holeMask(hole, SIZE[1], SIZE[2]);
  return {
    name: `${partName(task)}-${role}`,
    task,
    steps: data.classes.length * cfg.restorePerClass * cfg.settings[task].iterations,
    needsSeeds: false,
    key: { ...modelKey(s, task, role), ...inputKey(s, task) },
    run: async (ctx) => {
      const { restore } = await s.val();
      const clf = await s.models.get(role);
      const judge = await s.models.get(s.judgeOf(role));
      const label = Array.from(restore.labels);
      let r: TaskResult;
      if (task === 'inpaint') r = await inpaint({ classifier: clf, image: restore.images, hole, label, ...taskOptions(s, 'inpaint', label.length), onProgress: ctx.onProgress });
      else r = await superResolve({ classifier: clf, image: restore.images, factor: cfg.srFactor, label, ...taskOptions(s, 'superResolve', label.length), onProgress: ctx.onProgress });
      const self = await verdict(clf, r.images, restore.labels, batch, s.signal);
      const j = await verdict(judge, r.images, restore.labels, batch, s.signal);
      const q = quality(r.images, restore.images, task === 'inpaint' ? mask.data : undefined);
      const items: PartRecord['items'] = [];
      const files: string[] = [];
      for (let i = 0; i < label.length; i++) {
        const name = netteName(label[i]!);
        const f = `${ctx.rel}/${pad(i)}-${slug(name)}.png`;
        await writePng(join(ctx.dir, `${pad(i)}-${slug(name)}.png`), r.images, i);
        files.push(f);
        items.push({ class: name, source: relative(data.root, restore.files[i]!), file: f, self: netteName(self.preds[i]!), judge: netteName(j.preds[i]!), loss: round(r.losses[i]!) });
      }
      return {
        rows: [
          {
            method: `${role} (${ids[role]!.name})`,
            model: role,
            judge: judgeLabel(s.judgeOf(role), ids),
            psnr: q.psnr,
            ssim: q.ssim,
            judgeAccuracy: round(agreement(j.preds, restore.labels)),
            selfAccuracy: round(agreement(self.preds, restore.labels)),
            judgeConfidence: round(mean(j.confidence)),
            settings: r.settings,
          },
        ],
        items,
        files,
      };
    },
  };
}
