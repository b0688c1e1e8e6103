#!/usr/bin/env python3
"""The Python side of scripts/gpu-check.sh's bench: the same targeted L2 PGD loop in eager
PyTorch on one device (the one a Python user would write), timed per step with the device
synchronized. Prints one JSON object.

    python3 eager.py --model M.pt --device cuda --batch 8 --steps 20 [--bf16]
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--model', required=True)
    ap.add_argument('--device', default='cuda')
    ap.add_argument('--batch', type=int, default=1)
    ap.add_argument('--steps', type=int, default=20)
    ap.add_argument('--warmup', type=int, default=3)
    ap.add_argument('--bf16', action='store_true')
    ap.add_argument('--eps', type=float, default=40.0)
    ap.add_argument('--step', type=float, default=1.0)
    a = ap.parse_args()
    dev = torch.device(a.device)
    model = torch.jit.load(a.model, map_location=dev).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    g = torch.Generator().manual_seed(1)
    x0 = torch.rand(a.batch, 3, 224, 224, generator=g).to(dev)
    y = torch.zeros(a.batch, dtype=torch.long, device=dev)

    def step(x):
        x = x.detach().requires_grad_(True)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.bf16):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        (grad,) = torch.autograd.grad(loss, [x])
        with torch.no_grad():
            n = grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-10
            x = x - a.step * grad / n
            x = x0 + (x - x0).renorm(p=2, dim=0, maxnorm=a.eps)
            return x.clamp(0, 1)

    def sync():
        if dev.type == 'cuda':
            torch.cuda.synchronize()

    x = x0.clone()
    for _ in range(a.warmup):
        x = step(x)
    sync()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        x = step(x)
    sync()
    ms = (time.perf_counter() - t0) * 1000 / a.steps
    print(json.dumps({'msPerStep': ms, 'batch': a.batch, 'bf16': a.bf16, 'device': a.device, 'torch': torch.__version__}))


if __name__ == '__main__':
    main()
