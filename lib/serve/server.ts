/**
 * `robust-synth serve`: a web playground. A page (lib/serve/public/, plain HTML and JavaScript)
 * picks a model, a task, a class and an image, draws the inpainting hole, and watches the run
 * over server-sent events: status (with the place in the model's queue), progress (step, loss)
 * and previews (previews.ts). Results stay in memory for download.
 *
 * What it accepts from a request, and why (docs/playground.md; docs/security.md):
 *  - requests whose Host names this server (guards.ts: --allowed-host, loopback names on a
 *    loopback bind), from its own origin when they change state, and on /api/ with the server's
 *    access token (a session cookie or a bearer token); each client sees its own jobs only;
 *  - model names from the configured list only (context.ts), never a path: loading a model runs its code;
 *  - uploads up to maxUploadBytes, PNG, JPEG or WebP as sharp decodes them (uploads.ts);
 *  - bounded work: iterations, images per job, previews, queue length, a timeout per job.
 * Every refusal is a 4xx JSON `{ error: { code, message } }` carrying the library's error code;
 * any other failure is a 500 ERR_INTERNAL with a generic message, its detail on stderr (http-errors.ts).
 */
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import fastifyStatic from '@fastify/static';
import { packageRoot } from '../../binding/index.js';
import { Classifier, type Device } from '../classifier.js';
import * as is from '../validate.js';
import { configuredModels, createContext } from './context.js';
import { Access, installGuards, isLoopback } from './guards.js';
import { describe } from './http-errors.js';
import { Scheduler } from './jobs.js';
import { jobRoutes } from './routes-jobs.js';
import { modelRoutes } from './routes-models.js';

export { isLoopback } from './guards.js';

export interface PlaygroundOptions {
  /** Default 5177; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (loopback only). Any other address needs `allowedHosts`. */
  host?: string;
  /**
   * The host names (or addresses) clients use to reach the server; the Host header of every
   * request must be one of them (or a loopback name, on a loopback or wildcard bind). Required
   * for a non-loopback `host`.
   */
  allowedHosts?: string[];
  /** false: no access token (loopback binds only). Default true. */
  token?: boolean;
  /** Directories of further models (.pt with their cards); their names join the embedded ones. */
  modelDirs?: string[];
  device?: Device;
  /** Largest upload accepted, in bytes (default 5 MB). */
  maxUploadBytes?: number;
  /** Most PGD iterations a job may ask for (default 10,000). */
  maxIterations?: number;
  /** Most images a generate job may ask for (default 16). */
  maxCount?: number;
  /** Most previews per run (default 16; each is one copy of the current images, see previews.ts). */
  maxPreviews?: number;
  /** Jobs waiting per model beyond which new ones are refused with 429 (default 8). */
  maxQueue?: number;
  /** A job running longer is aborted (default 10 minutes). */
  jobTimeoutMs?: number;
  /** Finished jobs kept for download (default 50). */
  keepJobs?: number;
  /** Where the Fashion-MNIST examples are read (default: the Debian package's directory). */
  fashionMnistDir?: string;
}

export interface Playground {
  /** The server's address, without the token. */
  readonly url: string;
  /** The address to open: `url` with `/?token=...` (just `url` without a token). Print it once; it grants access. */
  readonly openUrl: string;
  /** The access token (undefined with `token: false`); scripts send it as `Authorization: Bearer TOKEN`. */
  readonly token: string | undefined;
  readonly host: string;
  readonly port: number;
  readonly app: FastifyInstance;
  /** Cancels every job, ends the event streams, stops listening and disposes of the models. */
  close(): Promise<void>;
}

/** The directory the page is served from: lib/serve/public in the package (also when running from dist/). */
export function publicDir(): string {
  return join(packageRoot(), 'lib', 'serve', 'public');
}

/** Starts the playground; resolves once it listens. */
export async function startPlayground(options: PlaygroundOptions = {}): Promise<Playground> {
  const host = is.nonEmptyString('host', options.host ?? '127.0.0.1');
  const port = is.integer('port', options.port ?? 5177, { min: 0, max: 65535 });
  const access = new Access({ host, allowedHosts: options.allowedHosts ?? [], token: options.token ?? true });
  const modelDirs = (options.modelDirs ?? []).map((d) => resolve(d));
  const device = options.device ?? 'auto';
  const limits = {
    maxUploadBytes: is.integer('maxUploadBytes', options.maxUploadBytes ?? 5 * 1024 * 1024, { min: 1 }),
    maxIterations: is.integer('maxIterations', options.maxIterations ?? 10_000, { min: 1, max: 1e7 }),
    maxCount: is.integer('maxCount', options.maxCount ?? 16, { min: 1, max: 1024 }),
    maxPreviews: is.integer('maxPreviews', options.maxPreviews ?? 16, { min: 0, max: 1000 }),
  };

  const models = configuredModels(modelDirs, (path) => Classifier.load(path, { device, allowedDirs: modelDirs }));
  const scheduler = new Scheduler({ maxQueue: options.maxQueue ?? 8, jobTimeoutMs: options.jobTimeoutMs ?? 10 * 60_000, keepJobs: options.keepJobs ?? 50 });
  const ctx = createContext({ models, scheduler, limits, ...(options.fashionMnistDir ? { fashionMnistDir: options.fashionMnistDir } : {}) });

  const app = Fastify({ logger: false, bodyLimit: 2 * 1024 * 1024, forceCloseConnections: true });
  await app.register(multipart, { limits: { fileSize: limits.maxUploadBytes, files: 1, fields: 4, parts: 5 } });
  await app.register(fastifyStatic, { root: publicDir(), prefix: '/', index: 'index.html', cacheControl: false });

  app.setErrorHandler((e, req, reply) => {
    const d = describe(e, `${req.method} ${req.url.split('?')[0]!.slice(0, 200)}`);
    void reply.code(d.status).type('application/json').send({ error: { code: d.code, message: d.message } });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: { code: 'ERR_BAD_INPUT', message: `no such route: ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}` } });
  });

  installGuards(app, access);
  modelRoutes(app, ctx);
  jobRoutes(app, ctx);

  app.addHook('preClose', async () => {
    await scheduler.close([...models.values()].map((m) => m.slot));
    for (const res of ctx.streams) res.end();
    ctx.streams.clear();
  });

  await app.listen({ port, host });
  const address = app.server.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  access.cookieName = `rs_session_${actualPort}`;
  // The address to print: a loopback bind's own, else the first allowed name (the Host check needs a name from the list).
  const shown = isLoopback(host) ? host : (options.allowedHosts?.[0] ?? '127.0.0.1');
  const urlHost = isIP(shown.replace(/^\[|\]$/g, '')) === 6 ? `[${shown.replace(/^\[|\]$/g, '')}]` : shown;
  const url = `http://${urlHost}:${actualPort}`;
  let closed: Promise<void> | undefined;
  return {
    url,
    openUrl: access.token ? `${url}/?token=${access.token}` : `${url}/`,
    token: access.token,
    host,
    port: actualPort,
    app,
    close() {
      closed ??= (async () => {
        await app.close();
        for (const { slot } of models.values()) {
          const clf = await slot.loaded?.catch(() => undefined);
          await clf?.dispose();
        }
      })();
      return closed;
    },
  };
}
