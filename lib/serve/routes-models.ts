/** The playground's read-only routes: the models, their details, the examples and a source at a model's shape. */
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { FASHION_CLASSES } from '../datasets.js';
import { encodePng } from '../images.js';
import { modelsDir } from '../models.js';
import { SEED_KINDS } from '../seeds.js';
import { defaultSettings } from '../tasks/common.js';
import { defaultSeedsFor } from '../tasks/generate.js';
import * as is from '../validate.js';
import { EXAMPLE_POOL, EXAMPLES_PER_CLASS, representationOf, type Context } from './context.js';
import { httpError } from './http-errors.js';
import { PLAYGROUND_TASKS as TASKS } from './run.js';

export function modelRoutes(app: FastifyInstance, ctx: Context): void {
  const { models, limits } = ctx;

  app.get('/api/models', async () => ({
    models: [...models.entries()].map(([name, { card, slot }]) => ({
      name,
      inputShape: card?.inputShape ?? null,
      classes: card?.classes.length ?? null,
      robust: card?.robust ?? null,
      role: card?.role ?? null,
      dataset: card?.dataset ?? null,
      embedded: resolve(slot.path, '..') === modelsDir(),
    })),
    default: models.has('fashion-robust') ? 'fashion-robust' : [...models.keys()][0] ?? null,
  }));

  app.get<{ Params: { name: string } }>('/api/models/:name', async (req) => {
    const { slot, card } = ctx.model(req.params.name);
    const clf = await slot.classifier();
    const seeds = defaultSeedsFor(card?.dataset);
    const defaults = Object.fromEntries(TASKS.map((t) => [t, defaultSettings(t, clf.inputShape)]));
    return {
      name: slot.name,
      inputShape: clf.inputShape,
      classes: clf.classes,
      device: clf.device,
      robust: card?.robust ?? null,
      role: card?.role ?? null,
      seedKinds: seeds ? [...SEED_KINDS].reverse() : ['uniform'],
      defaults,
      representation: await representationOf(clf),
      limits,
    };
  });

  app.get<{ Params: { name: string }; Querystring: { example?: string; upload?: string } }>('/api/models/:name/input.png', async (req, reply) => {
    const { slot } = ctx.model(req.params.name);
    const q = req.query;
    const source = ctx.parseSource(q.example !== undefined ? { example: Number(q.example) } : q.upload !== undefined ? { upload: q.upload } : undefined, req.client);
    const clf = await slot.classifier();
    const { image } = await ctx.sourceImage(source, clf.inputShape);
    return reply.type('image/png').header('cache-control', 'no-store').send(await encodePng(image, 0));
  });

  app.get('/api/examples', async () => {
    const ex = ctx.examples();
    if (!ex) return { available: false, reason: 'the Fashion-MNIST test images are not installed on this server', items: [] };
    const items: Array<{ index: number; label: number; className: string; url: string }> = [];
    for (let k = 0; k < FASHION_CLASSES.length; k++) {
      let found = 0;
      for (let i = 0; i < ex.labels.length && found < EXAMPLES_PER_CLASS; i++) {
        if (ex.labels[i] !== k) continue;
        items.push({ index: i, label: k, className: FASHION_CLASSES[k]!, url: `/api/examples/${i}.png` });
        found++;
      }
    }
    return { available: true, items };
  });

  app.get<{ Params: { file: string } }>('/api/examples/:file', async (req, reply) => {
    const m = /^(\d+)\.png$/.exec(req.params.file);
    if (!m) throw httpError(404, 'ERR_BAD_INPUT', 'examples are /api/examples/INDEX.png');
    const { image } = await ctx.sourceImage({ kind: 'example', index: is.integer('example', Number(m[1]), { min: 0, max: EXAMPLE_POOL - 1 }) }, [1, 28, 28]);
    return reply.type('image/png').header('cache-control', 'private, max-age=3600').send(await encodePng(image, 0));
  });
}
