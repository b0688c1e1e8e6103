#!/usr/bin/python3
"""The PGD loop of docs/algorithm.md in plain PyTorch, timed: the Python baseline of
`npm run bench` (same TorchScript file, same LibTorch, same thread count as the native runs).
The loop itself is the test suite's reference, test/fixtures/reference_pgd.py.

    /usr/bin/python3 bench/python_loop.py loop --model M.pt --shape 3,224,224 --batch 1 \
        --steps 10 --runs 3 --threads 2 [--x0 x0.f32 --targets t.i32] [--channels-last] [--freeze] [--bf16]
    /usr/bin/python3 bench/python_loop.py flops --model M.pt --shape 3,224,224
    /usr/bin/python3 bench/python_loop.py peak --threads 2
    /usr/bin/python3 bench/python_loop.py load --threads 2 --seconds 60     # a co-runner (prints {"ready": true} when running)

Prints one JSON object on stdout. Timings are wall-clock milliseconds:
  stepMs[r]: steady-state ms per step of run r (the steps only: from before the first
             forward to after the last update; the final useBest forward is timed separately
             in finishMs[r]);
  floorMs:   bare forward + backward w.r.t. the input, one value per repetition.
"""
import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / 'test' / 'fixtures'))
from reference_pgd import pgd as reference_pgd  # noqa: E402  (the one Python reference loop)


def load(path, channels_last, freeze):
    m = torch.jit.load(path, map_location='cpu').eval()
    for p in m.parameters():
        p.requires_grad_(False)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
    if freeze:
        keep = ['features'] if hasattr(m, 'features') else []
        m = torch.jit.freeze(m, preserved_attrs=keep)
    return m


def make_inputs(args, shape):
    n = args.batch
    if args.x0:
        x0 = torch.from_file(args.x0, size=n * shape[0] * shape[1] * shape[2], dtype=torch.float32).view(n, *shape).clone()
        y = torch.from_file(args.targets, size=n, dtype=torch.int32).long()
    else:
        g = torch.Generator().manual_seed(1)
        x0 = torch.rand(n, *shape, generator=g)
        y = torch.zeros(n, dtype=torch.long)
    return x0, y


def run_loop(args):
    torch.set_num_threads(args.threads)
    shape = [int(s) for s in args.shape.split(',')]
    model = load(args.model, args.channels_last, args.freeze)
    x0, y = make_inputs(args, shape)

    def model_in(x):
        return x.contiguous(memory_format=torch.channels_last) if args.channels_last else x

    def logits_of(x):
        if args.bf16:
            with torch.autocast('cpu', dtype=torch.bfloat16):
                return model(model_in(x)).float()
        return model(model_in(x))

    def pgd(steps):
        """Targeted L2 PGD with useBest: the test suite's reference loop (docs/algorithm.md's
        formulas), run on this model with this preparation."""
        marks = []
        t0 = time.perf_counter()
        best_x = reference_pgd(logits_of, x0, y, '2', args.eps, args.step, steps, True,
                               on_steps_done=lambda: marks.append(time.perf_counter()))
        t1, t2 = marks[0], time.perf_counter()
        return best_x, (t1 - t0) * 1000 / max(steps, 1), (t2 - t1) * 1000

    def floor_once():
        xi = x0.detach().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(logits_of(xi), y), [xi])

    t = time.perf_counter()
    pgd(args.warmup)  # the TorchScript profiling executor optimizes after its first runs
    warm_ms = (time.perf_counter() - t) * 1000
    step_ms, finish_ms, floor_ms = [], [], []
    result = None
    for _ in range(args.runs):
        result, per_step, fin = pgd(args.steps)
        step_ms.append(per_step)
        finish_ms.append(fin)
        for _ in range(args.floor_reps):
            t = time.perf_counter()
            floor_once()
            floor_ms.append((time.perf_counter() - t) * 1000)
    if args.out_images:
        result.contiguous().numpy().tofile(args.out_images)
    return {
        'stepMs': step_ms, 'finishMs': finish_ms, 'floorMs': floor_ms, 'warmupMs': warm_ms,
        'threads': torch.get_num_threads(), 'torch': torch.__version__,
        'maxRssKb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        'blas': blas_library(),
    }


def blas_library():
    try:
        with open('/proc/self/maps') as f:
            paths = {line.split()[-1] for line in f if 'blas' in line.split()[-1]}
        import os
        return sorted({os.path.realpath(p) for p in paths})
    except OSError:
        return []


def run_flops(args):
    """Forward FLOPs of conv/linear layers (the profiler's count) per image: a step costs twice
    that (the backward w.r.t. the input repeats each layer's work once; no weight gradients)."""
    shape = [int(s) for s in args.shape.split(',')]
    model = load(args.model, False, False)
    x = torch.rand(1, *shape)
    with torch.no_grad():
        model(x)
        model(x)
        with torch.autograd.profiler.profile(with_flops=True, record_shapes=True) as prof:
            model(x)
    total, by_op = 0, {}
    for e in prof.function_events:
        f = getattr(e, 'flops', 0) or 0
        if f and e.name in ('aten::conv2d', 'aten::addmm', 'aten::mm', 'aten::linear', 'aten::matmul', 'aten::bmm'):
            if e.name == 'aten::linear' or e.name == 'aten::matmul':
                continue  # counted in their addmm/mm children
            total += f
            by_op[e.name] = by_op.get(e.name, 0) + f
    return {'forwardFlops': total, 'stepFlops': 2 * total, 'byOp': by_op}


def run_peak(args):
    """What oneDNN's fp32 (and bf16) convolutions reach on this machine: a large 1x1 convolution,
    channels-last, the best of several repetitions. The practical ceiling next to the theoretical one."""
    torch.set_num_threads(args.threads)
    out = {}
    for name, dtype in (('fp32', torch.float32), ('bf16', torch.bfloat16)):
        x = torch.rand(8, 512, 28, 28).to(dtype).contiguous(memory_format=torch.channels_last)
        w = torch.rand(512, 512, 1, 1).to(dtype).contiguous(memory_format=torch.channels_last)
        flops = 2 * 8 * 28 * 28 * 512 * 512
        best = float('inf')
        with torch.no_grad():
            for _ in range(3):
                F.conv2d(x, w)
            for _ in range(args.reps):
                t = time.perf_counter()
                for _ in range(5):
                    F.conv2d(x, w)
                best = min(best, (time.perf_counter() - t) / 5)
        out[name + 'Gflops'] = flops / best / 1e9
    out['threads'] = torch.get_num_threads()
    return out


def run_load(args):
    """A co-runner: what another CPU-heavy job on the machine looks like (a 2-thread training
    step is mostly oneDNN convolutions), for --seconds or until killed. Prints {"ready": true}
    once its first convolution is done (torch imported, the OpenMP team up), so that the bench
    starts timing only then."""
    torch.set_num_threads(args.threads)
    x = torch.rand(16, 64, 56, 56)
    w = torch.rand(64, 64, 3, 3)
    t0, n = time.perf_counter(), 0
    with torch.no_grad():
        while time.perf_counter() - t0 < args.seconds:
            F.conv2d(x, w, padding=1)
            n += 1
            if n == 1:
                sys.stdout.write('{"ready": true}\n')
                sys.stdout.flush()
    return {'convs': n, 'threads': torch.get_num_threads()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('mode', choices=['loop', 'flops', 'peak', 'load'])
    ap.add_argument('--seconds', type=float, default=60.0)
    ap.add_argument('--model')
    ap.add_argument('--shape', default='3,224,224')
    ap.add_argument('--batch', type=int, default=1)
    ap.add_argument('--steps', type=int, default=10)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--floor-reps', type=int, default=3)
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--eps', type=float, default=40.0)
    ap.add_argument('--step', type=float, default=1.0)
    ap.add_argument('--x0', help='raw float32 NCHW file')
    ap.add_argument('--targets', help='raw int32 file')
    ap.add_argument('--out-images', help='write the final images (raw float32) here')
    ap.add_argument('--channels-last', action='store_true')
    ap.add_argument('--freeze', action='store_true')
    ap.add_argument('--bf16', action='store_true')
    args = ap.parse_args(argv)
    fn = {'loop': run_loop, 'flops': run_flops, 'peak': run_peak, 'load': run_load}[args.mode]
    json.dump(fn(args), sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
