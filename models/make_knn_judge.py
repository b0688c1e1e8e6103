#!/usr/bin/python3
"""Build fashion-judge-knn: a Fashion-MNIST judge that is no neural network.

    /usr/bin/python3 models/make_knn_judge.py [--out models] [--dims 32] [--per-class 3000] [--k 5]

It agrees with a class only when the image lies near real training images of that class: the
image is projected on the training set's first --dims principal components (pixels in [0, 1]),
and the logit of class c is minus the mean Euclidean distance to its --k nearest training images
of class c (--per-class images of each class, the first ones of the training set, kept in fp16).
No convolution, no learned weights besides the PCA basis: adversarial perturbations made on a
network have nothing to transfer to, which is why `robust-synth eval` uses it beside the two
network judges. features() is the PCA projection (the Fréchet distance's feature space).

Deterministic (no random numbers); exported as TorchScript with its model card, like the others.
"""
import argparse
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
from _common import sha256, write_json  # noqa: E402
from train_fashion import CLASSES, load_split  # noqa: E402


class KnnJudge(nn.Module):
    """Class-wise k-nearest-neighbour distances in a PCA space of the pixels."""

    def __init__(self, mean, basis, bank, bank_labels, k: int, classes: int):
        super().__init__()
        self.register_buffer('mean', mean)            # [784]
        self.register_buffer('basis', basis)          # [784, D]
        self.register_buffer('bank', bank.half())     # [N, D], N = classes * per class, grouped by class
        self.register_buffer('bank_labels', bank_labels)
        self.k = k
        self.classes = classes
        self.per_class = bank.shape[0] // classes

    @torch.jit.export
    def features(self, x):
        return (x.reshape(x.shape[0], -1) - self.mean) @ self.basis

    def forward(self, x):
        z = self.features(x)
        bank = self.bank.float()
        # Squared distances through the expansion (differentiable; clamped before the root).
        d2 = (z * z).sum(1, keepdim=True) - 2.0 * z @ bank.t() + (bank * bank).sum(1).unsqueeze(0)
        d = d2.clamp_min(1e-12).sqrt().reshape(x.shape[0], self.classes, self.per_class)
        near = torch.topk(d, self.k, dim=2, largest=False).values
        return -near.mean(2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument('--dims', type=int, default=32)
    ap.add_argument('--per-class', type=int, default=3000)
    ap.add_argument('--k', type=int, default=5)
    ap.add_argument('--threads', type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    xtr, ytr = load_split('train')
    xte, yte = load_split('t10k')
    flat = xtr.reshape(len(xtr), -1).double()
    mean = flat.mean(0)
    cov = (flat - mean).t() @ (flat - mean) / len(flat)
    evals, evecs = torch.linalg.eigh(cov)
    basis = evecs[:, torch.argsort(evals, descending=True)[:args.dims]]
    # Fix each component's sign (largest entry positive) so the file is the same on every run.
    basis = basis * torch.sign(basis.gather(0, basis.abs().argmax(0, keepdim=True)))
    mean, basis = mean.float(), basis.float().contiguous()
    idx = torch.cat([torch.nonzero(ytr == c).flatten()[:args.per_class] for c in range(len(CLASSES))])
    bank = (flat[idx].float() - mean) @ basis
    judge = KnnJudge(mean, basis, bank, ytr[idx].to(torch.int32), args.k, len(CLASSES)).eval()
    with torch.no_grad():
        correct = sum((judge(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum().item() for i in range(0, len(xte), 500))
    acc = correct / len(xte)
    name = 'fashion-judge-knn'
    path = os.path.join(args.out, f'{name}.pt')
    torch.jit.script(judge).save(path)
    write_json(path[:-3] + '.json', {
        'name': name,
        'format': 'robust-synth-model/1',
        'inputShape': [1, 28, 28],
        'channels': 1,
        'normalization': {'mean': [0.0], 'std': [1.0], 'inside': True},
        'classes': CLASSES,
        'representation': {'method': 'features', 'size': args.dims, 'layer': f'PCA projection of the pixels ({args.dims} components)'},
        'torchVersion': torch.__version__,
        'sha256': sha256(path),
        'dataset': 'fashion-mnist',
        'trainImages': len(idx),
        'architecture': f'kNN: class-wise mean distance to the {args.k} nearest of {args.per_class} training images per class, '
                        f'in the first {args.dims} principal components of the pixels (no neural network)',
        'robust': False,
        'eps': 0,
        'role': 'judge',
        'training': {'dims': args.dims, 'perClass': args.per_class, 'k': args.k, 'seconds': round(time.time() - t0)},
        'cleanAccuracyPython': acc,
    })
    print(f'wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB), test accuracy {acc:.4f}', flush=True)


if __name__ == '__main__':
    sys.exit(main())
