/**
 * Asking Pythons where their `torch` is, without importing it (the resolver's step 3). Spawning a
 * Python costs tens of milliseconds, so the resolver asks once per process (discover.ts).
 */
import { spawnSync } from 'node:child_process';
import { realpathSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Finds an executable on PATH (no shell), for naming python3 in reports and de-duplicating. */
function onPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  if (name.includes('/')) return isFile(name) ? name : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (dir && isFile(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

// Locates torch without importing it (importing takes seconds; this takes milliseconds). Same
// directory as torch.utils.cmake_prefix_path minus its share/cmake suffix.
const PY_PROBE =
  'import importlib.util, json, sys\n' +
  's = importlib.util.find_spec("torch")\n' +
  'print(json.dumps({"torch": list(s.submodule_search_locations)[0] if s and s.submodule_search_locations else None, "exe": sys.executable}))';

type Answer = { status: number | null; stdout: string; stderr: string; error?: Error };
const answers = new Map<string, Answer>();

/** One spawn per Python (by its real file) and environment per process: the answer cannot change. */
function ask(exe: string, env: NodeJS.ProcessEnv): Answer {
  let id = exe;
  try {
    const real = realpathSync(exe);
    const st = statSync(real);
    id = `${real}:${st.size}:${st.mtimeMs}`;
  } catch {
    // ask it anyway; spawn reports the error
  }
  const key = JSON.stringify([id, env.PYTHONPATH, env.PYTHONHOME, env.PYTHONNOUSERSITE, env.HOME, env.VIRTUAL_ENV]);
  let a = answers.get(key);
  if (!a) {
    const r = spawnSync(exe, ['-c', PY_PROBE], { encoding: 'utf8', timeout: 15_000, env, stdio: ['ignore', 'pipe', 'pipe'] });
    a = { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
    if (!r.error) answers.set(key, a);
  }
  return a;
}

/** Asks each Python where its `torch` package is (each real Python once per process). */
export function findPythonTorch(pythons: string[], env: NodeJS.ProcessEnv): Array<{ python: string; torch?: string; problem?: string }> {
  const out: Array<{ python: string; torch?: string; problem?: string }> = [];
  const seen = new Set<string>();
  const asked = new Set<string>();
  for (const py of pythons) {
    const exe = onPath(py, env);
    if (!exe) {
      // One line for every Python that is not there (python3 on PATH and /usr/bin/python3 alike).
      const missing = out.find((o) => o.problem === 'not found');
      if (missing) missing.python += `, ${py}`;
      else out.push({ python: py, problem: 'not found' });
      continue;
    }
    let real = exe;
    try {
      real = realpathSync(exe);
    } catch {
      // keep the name
    }
    if (asked.has(real)) continue; // python3 on PATH is often /usr/bin/python3
    asked.add(real);
    const r = ask(exe, env);
    if (r.status !== 0) {
      out.push({ python: exe, problem: `did not run (${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n').at(-1)})` });
      continue;
    }
    try {
      const j = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { torch: string | null; exe: string };
      const label = exe === j.exe ? exe : `${exe} (${j.exe})`;
      if (!j.torch) out.push({ python: label, problem: 'has no torch module' });
      else if (seen.has(j.torch)) continue;
      else {
        seen.add(j.torch);
        out.push({ python: label, torch: j.torch });
      }
    } catch {
      out.push({ python: exe, problem: 'printed something unexpected' });
    }
  }
  return out;
}

/** The Pythons asked for `torch`: $ROBUST_SYNTH_PYTHON, else python3 on PATH and /usr/bin/python3. */
export function defaultPythons(env: NodeJS.ProcessEnv): string[] {
  if (env.ROBUST_SYNTH_PYTHON) return [env.ROBUST_SYNTH_PYTHON];
  return ['python3', '/usr/bin/python3'];
}

