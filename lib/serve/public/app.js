// The robust-synth playground page: plain JavaScript, no build step. It talks to the server in
// lib/serve/server.ts: JSON for models, examples, uploads and jobs, server-sent events for a
// job's status, progress and previews.

const $ = (id) => document.getElementById(id);
const els = {
  model: $('model'), modelInfo: $('model-info'), task: $('task'), taskInfo: $('task-info'), seed: $('seed'), count: $('count'),
  randomSeed: $('random-seed'), cls: $('class'), classLabel: $('class-label'), factor: $('factor'), iterations: $('iterations'),
  eps: $('eps'), step: $('step'), previews: $('previews'), cost: $('cost'), examples: $('examples'), examplesNote: $('examples-note'),
  feature: $('feature'), featureNote: $('feature-note'), from: $('from'), maskNote: $('mask-note'),
  upload: $('upload'), uploadError: $('upload-error'), imageChoice: $('image-choice'), canvas: $('canvas'), brush: $('brush'),
  clearMask: $('clear-mask'), run: $('run'), cancel: $('cancel'), status: $('status'), progress: $('progress'), stats: $('stats'),
  start: $('start'), preview: $('preview'), previewCaption: $('preview-caption'), results: $('results'), queueInfo: $('queue-info'),
};
const ctx = els.canvas.getContext('2d');

const TASK_INFO = {
  generate: 'PGD toward the class from a random seed of that class.',
  inpaint: 'Fills the hole so the image reads as its class, keeping the pixels around it.',
  superResolve: 'Averages the image over blocks, then restores detail toward its class.',
  translate: 'Moves an image of any class toward another class.',
  sketchToImage: "Turns the image's edges (a Sobel sketch, dark lines on white) into an image of the class.",
  visualizeFeature: 'Raises one unit of the representation (features()) as far as it goes: what the unit encodes.',
  paintFeature: 'Adds one unit of the representation inside the region you draw, holding the rest of the image.',
  invert: "Starts from noise and reaches the image's representation: what the representation keeps of it.",
};
/** Tasks whose drawn region matters, and what it is. */
const MASK_NOTES = {
  inpaint: 'Draw the hole on the image; leave it empty for the default centred hole.',
  paintFeature: 'Draw where to paint the unit; leave it empty for the default centred region.',
};
/** Tasks that take a class (a target, or inpaint's and superResolve's label); the page's class field says the same. */
const CLASS_TASKS = ['generate', 'inpaint', 'superResolve', 'translate', 'sketchToImage'];
/** Does the task start from the image? */
const usesImage = (task) => (task === 'visualizeFeature' ? els.from.value === 'image' : task !== 'generate');

const state = {
  model: null, // the selected model's details (GET /api/models/:name)
  source: null, // { example: i } | { upload: id }
  image: null, // the source as the model sees it
  mask: null, // Uint8Array(h * w), 1 on the hole
  job: null,
  events: null,
  drawing: false,
};

class ApiError extends Error {
  constructor(message, code, status) {
    super(message);
    this.code = code;
    this.status = status;
  }
}

/** Shown once the server refuses the page's session: the address needs the token robust-synth serve printed. */
function noAccess(message) {
  if (document.getElementById('no-access')) return;
  const p = document.createElement('p');
  p.id = 'no-access';
  p.className = 'error banner';
  p.textContent = `${message} [401]`;
  document.querySelector('header').after(p);
}

async function api(path, init) {
  const res = await fetch(path, init);
  const json = (res.headers.get('content-type') || '').includes('json') ? await res.json() : null;
  if (res.status === 401) noAccess(json?.error?.message ?? 'this server needs its access token');
  if (!res.ok) throw new ApiError(json?.error?.message ?? res.statusText, json?.error?.code ?? 'ERR_INTERNAL', res.status);
  return json;
}

const describe = (e) => `${e.message}${e.code ? ` [${e.code}]` : ''}`;

function setStatus(s, text) {
  els.status.dataset.state = s;
  els.status.textContent = text;
}

function show(task) {
  for (const el of document.querySelectorAll('[data-for]')) el.hidden = !el.dataset.for.split(' ').includes(task);
  const image = usesImage(task);
  els.imageChoice.hidden = !image;
  document.getElementById('canvas-wrap').hidden = !image;
  if (task === 'visualizeFeature') {
    // From the image: one run, no count; the noise note only for noise.
    $('count-label').hidden = image;
    $('random-seed-label').hidden = image;
    $('noise-note').hidden = image;
  }
  if (MASK_NOTES[task]) els.maskNote.textContent = MASK_NOTES[task];
}
const drawsMask = () => els.task.value === 'inpaint' || els.task.value === 'paintFeature';

function option(value, text) {
  const o = document.createElement('option');
  o.value = String(value);
  o.textContent = text;
  return o;
}

// ---- model and task --------------------------------------------------------------------

async function loadModels() {
  const { models, default: def } = await api('/api/models');
  els.model.replaceChildren(...models.map((m) => option(m.name, `${m.name}${m.inputShape ? ` (${m.inputShape.join('x')})` : ''}`)));
  if (def) els.model.value = def;
  await selectModel(els.model.value);
}

async function selectModel(name) {
  els.modelInfo.textContent = 'loading…';
  try {
    state.model = await api(`/api/models/${encodeURIComponent(name)}`);
  } catch (e) {
    els.modelInfo.textContent = describe(e);
    return;
  }
  const m = state.model;
  els.modelInfo.textContent = `${m.inputShape.join('x')}, ${m.classes.length} classes, ${m.robust ? 'robust' : m.role ?? 'standard'}, on ${m.device}`;
  els.seed.replaceChildren(...m.seedKinds.map((k) => option(k, k)));
  els.previews.max = String(m.limits.maxPreviews);
  els.iterations.max = String(m.limits.maxIterations);
  els.count.max = String(m.limits.maxCount);
  const [, h, w] = m.inputShape;
  state.mask = new Uint8Array(h * w);
  const scale = Math.max(1, Math.floor(280 / Math.max(h, w)));
  els.canvas.width = w * scale;
  els.canvas.height = h * scale;
  updateTask();
  if (state.source) await selectSource(state.source);
  else draw();
}

function updateTask() {
  const task = els.task.value;
  show(task);
  els.taskInfo.textContent = TASK_INFO[task];
  const m = state.model;
  if (!m) return;
  const keep = els.cls.value;
  const classes = m.classes.map((c, i) => option(i, `${i}: ${c}`));
  if (task === 'inpaint' || task === 'superResolve') {
    els.classLabel.textContent = 'Label';
    els.cls.replaceChildren(option('auto', "auto (model's prediction)"), ...classes);
  } else {
    els.classLabel.textContent = task === 'translate' ? 'Translate to' : task === 'sketchToImage' ? 'The sketch shows' : 'Class';
    els.cls.replaceChildren(...classes);
  }
  const rep = m.representation;
  els.feature.max = rep ? String(rep.size - 1) : '';
  els.featureNote.textContent = rep
    ? `features() has ${rep.size} units (0–${rep.size - 1}); some worth a look: ${rep.units.join(', ')}.`
    : 'This model has no features() method: the feature tasks cannot run on it.';
  if ([...els.cls.options].some((o) => o.value === keep)) els.cls.value = keep;
  const d = m.defaults[task];
  els.iterations.placeholder = String(d.iterations);
  els.eps.placeholder = String(d.eps);
  els.step.placeholder = String(d.step);
  updateCost();
  draw();
}

function updateCost() {
  els.cost.textContent = '';
}

// ---- the image and the hole --------------------------------------------------------------

async function loadExamples() {
  let ex;
  try {
    ex = await api('/api/examples');
  } catch (e) {
    ex = { available: false, reason: describe(e), items: [] };
  }
  if (!ex.available) {
    els.examplesNote.textContent = `No examples (${ex.reason}); upload an image.`;
    return;
  }
  els.examples.replaceChildren(
    ...ex.items.map((it) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'example';
      b.title = `#${it.index}: ${it.className}`;
      b.dataset.index = String(it.index);
      const img = document.createElement('img');
      img.src = it.url;
      img.alt = it.className;
      b.append(img);
      b.addEventListener('click', () => selectSource({ example: it.index }));
      return b;
    }),
  );
  if (!state.source && ex.items.length) await selectSource({ example: ex.items[0].index });
}

async function selectSource(source) {
  state.source = source;
  for (const b of els.examples.querySelectorAll('.example')) b.classList.toggle('selected', source.example !== undefined && b.dataset.index === String(source.example));
  if (!state.model) return;
  const q = source.example !== undefined ? `example=${source.example}` : `upload=${encodeURIComponent(source.upload)}`;
  const img = new Image();
  img.src = `/api/models/${encodeURIComponent(state.model.name)}/input.png?${q}`;
  try {
    await img.decode();
    state.image = img;
  } catch {
    state.image = null;
    els.uploadError.textContent = 'could not load that image for this model';
  }
  draw();
}

function draw() {
  const { width, height } = els.canvas;
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = '#ddd';
  ctx.fillRect(0, 0, width, height);
  if (state.image) ctx.drawImage(state.image, 0, 0, width, height);
  if (!drawsMask() || !state.model || !state.mask) return;
  const [, h, w] = state.model.inputShape;
  const sx = width / w;
  const sy = height / h;
  ctx.fillStyle = 'rgba(255, 40, 90, 0.6)';
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (state.mask[y * w + x]) ctx.fillRect(x * sx, y * sy, sx, sy);
}

function paint(ev) {
  const m = state.model;
  if (!m) return;
  const [, h, w] = m.inputShape;
  const r = els.canvas.getBoundingClientRect();
  const cx = ((ev.clientX - r.left) / r.width) * w;
  const cy = ((ev.clientY - r.top) / r.height) * h;
  const radius = (Number(els.brush.value) * Math.max(h, w)) / 56;
  for (let y = Math.max(0, Math.floor(cy - radius)); y <= Math.min(h - 1, Math.ceil(cy + radius)); y++) {
    for (let x = Math.max(0, Math.floor(cx - radius)); x <= Math.min(w - 1, Math.ceil(cx + radius)); x++) {
      if ((x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 <= radius * radius) state.mask[y * w + x] = 1;
    }
  }
  draw();
}

els.canvas.addEventListener('pointerdown', (ev) => {
  if (!drawsMask()) return;
  state.drawing = true;
  els.canvas.setPointerCapture(ev.pointerId);
  paint(ev);
});
els.canvas.addEventListener('pointermove', (ev) => {
  if (state.drawing) paint(ev);
});
for (const type of ['pointerup', 'pointercancel']) els.canvas.addEventListener(type, () => (state.drawing = false));
els.clearMask.addEventListener('click', () => {
  state.mask?.fill(0);
  draw();
});

els.upload.addEventListener('change', async () => {
  const file = els.upload.files?.[0];
  els.uploadError.textContent = '';
  if (!file) return;
  const form = new FormData();
  form.append('image', file, file.name);
  try {
    const up = await api('/api/uploads', { method: 'POST', body: form });
    for (const b of els.examples.querySelectorAll('.example')) b.classList.remove('selected');
    await selectSource({ upload: up.id });
  } catch (e) {
    els.uploadError.textContent = `Upload refused: ${describe(e)}`;
  } finally {
    els.upload.value = '';
  }
});

// ---- running -------------------------------------------------------------------------------

function base64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return btoa(s);
}

const num = (el) => (el.value.trim() === '' ? undefined : Number(el.value));

function jobBody() {
  const task = els.task.value;
  const body = {
    model: state.model.name,
    task,
    class: els.cls.value,
    previews: num(els.previews) ?? 0,
    iterations: num(els.iterations),
    eps: num(els.eps),
    step: num(els.step),
  };
  if (task === 'generate') Object.assign(body, { seed: els.seed.value, count: num(els.count) ?? 1, randomSeed: num(els.randomSeed) ?? 0 });
  if (usesImage(task)) body.source = state.source;
  if ((task === 'inpaint' || task === 'paintFeature') && state.mask?.some((v) => v)) body.mask = base64(state.mask);
  if (task === 'superResolve') body.factor = num(els.factor);
  if (task === 'visualizeFeature' || task === 'paintFeature') body.feature = num(els.feature);
  if (task === 'visualizeFeature') {
    body.from = els.from.value;
    if (body.from === 'noise') Object.assign(body, { count: num(els.count) ?? 1, randomSeed: num(els.randomSeed) ?? 0 });
  }
  if (task === 'invert') body.randomSeed = num(els.randomSeed) ?? 0;
  if (!CLASS_TASKS.includes(task)) delete body.class;
  return body;
}

function closeEvents() {
  state.events?.close();
  state.events = null;
}

function resetRun() {
  closeEvents();
  els.results.replaceChildren();
  els.progress.value = 0;
  els.stats.textContent = 'step – · loss –';
  els.start.removeAttribute('src');
  els.preview.removeAttribute('src');
  els.previewCaption.textContent = 'preview';
}

async function run() {
  if (!state.model) return;
  resetRun();
  setStatus('submitting', 'submitting…');
  els.run.disabled = true;
  try {
    const job = await api('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(jobBody()) });
    watch(job);
  } catch (e) {
    els.run.disabled = false;
    setStatus('refused', `refused: ${describe(e)}`);
  }
}

function watch(job) {
  state.job = job;
  els.cancel.disabled = false;
  const es = new EventSource(job.events);
  state.events = es;
  es.addEventListener('status', (ev) => onStatus(JSON.parse(ev.data)));
  es.addEventListener('progress', (ev) => {
    const p = JSON.parse(ev.data);
    els.progress.value = (p.done + (p.total ? p.step / p.total : 1) * p.inBatch) / Math.max(1, p.images);
    els.stats.textContent = `step ${p.step}/${p.total} · loss ${p.loss.toFixed(4)}${p.images > 1 ? ` · ${p.images} images` : ''} · ${(p.elapsedMs / 1000).toFixed(1)} s`;
  });
  es.addEventListener('preview', (ev) => {
    const p = JSON.parse(ev.data);
    if (p.step === 0) {
      els.start.src = p.png;
      return;
    }
    els.preview.src = p.png;
    els.previewCaption.textContent = `preview at step ${p.step}/${p.total}`;
  });
}

function onStatus(s) {
  if (!state.job || s.id !== state.job.id) return;
  void pollQueue();
  switch (s.state) {
    case 'queued':
      setStatus('queued', `queued: position ${s.position} (${s.position} job${s.position === 1 ? '' : 's'} ahead on ${s.model})`);
      break;
    case 'running':
      setStatus('running', `running ${s.task} on ${s.model}…`);
      break;
    case 'done':
      setStatus('done', `done in ${(s.result.ms / 1000).toFixed(1)} s`);
      els.progress.value = 1;
      showResults(s);
      break;
    case 'cancelled':
      setStatus('cancelled', `cancelled: ${s.error.message} [${s.error.code}]`);
      break;
    case 'failed':
      setStatus('failed', `failed: ${s.error.message} [${s.error.code}]`);
      break;
  }
  if (s.state === 'done' || s.state === 'cancelled' || s.state === 'failed') {
    closeEvents();
    els.cancel.disabled = true;
    els.run.disabled = false;
  }
}

function link(href, text, download) {
  const a = document.createElement('a');
  a.href = href;
  a.textContent = text;
  if (download) a.download = download;
  return a;
}

function showResults(s) {
  const r = s.result;
  const pngs = r.files.filter((f) => f.type === 'image/png');
  const first = r.entries[0];
  if (first) {
    els.preview.src = r.files.find((f) => f.name === first.file).url;
    els.previewCaption.textContent = `result: reads as ${first.predicted.name}${CLASS_TASKS.includes(s.task) ? ` (target ${first.target.name})` : ''}`;
  }
  const list = document.createElement('ul');
  for (const f of pngs) {
    const li = document.createElement('li');
    const img = document.createElement('img');
    img.src = f.url;
    img.alt = f.name;
    const entry = r.entries.find((e) => e.file === f.name);
    li.append(img, link(f.url, f.name, f.name));
    if (entry) li.append(` → ${entry.predicted.name}, loss ${entry.loss.toFixed(3)}`);
    list.append(li);
  }
  const more = document.createElement('p');
  more.append(link(r.manifest, 'manifest.json', 'manifest.json'), ' · ', link(r.zip, 'all files (.zip)'), ' · ', link(r.page, 'result page'));
  els.results.replaceChildren(list, more);
}

els.run.addEventListener('click', run);
els.cancel.addEventListener('click', async () => {
  if (!state.job) return;
  els.cancel.disabled = true;
  try {
    await api(`/api/jobs/${state.job.id}/cancel`, { method: 'POST' });
  } catch (e) {
    setStatus('failed', `cancel failed: ${describe(e)}`);
  }
});
els.model.addEventListener('change', () => selectModel(els.model.value));
els.task.addEventListener('change', updateTask);
els.from.addEventListener('change', updateTask);
els.iterations.addEventListener('input', updateCost);
els.previews.addEventListener('input', updateCost);

async function pollQueue() {
  try {
    const { models } = await api('/api/queue');
    const m = models.find((x) => x.name === state.model?.name);
    els.queueInfo.textContent = m ? `${m.name}: ${m.running ? `1 running (${m.running.task})` : 'idle'}${m.waiting ? `, ${m.waiting} waiting` : ''}` : '';
  } catch (e) {
    els.queueInfo.textContent = e instanceof ApiError && e.status === 401 ? 'no access' : 'server unreachable';
  }
}

show(els.task.value);
try {
  await loadModels();
  await loadExamples();
} catch (e) {
  // Without access the page stays empty, under the banner that says how to get in.
  if (!(e instanceof ApiError && e.status === 401)) throw e;
  els.run.disabled = true;
}
setInterval(pollQueue, 1500);
void pollQueue();
document.body.dataset.ready = 'true';
