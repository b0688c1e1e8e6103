#!/usr/bin/python3
"""Train the embedded Fashion-MNIST classifiers and export them as TorchScript.

    /usr/bin/python3 models/train_fashion.py [--out models] [--only robust,standard,judge]
    # the shipped fashion-robust, bit for bit (one thread: the sum order of two differs):
    /usr/bin/python3 models/train_fashion.py --only robust --threads 1
    # one robust candidate into its own directory (models/ untouched):
    /usr/bin/python3 models/train_fashion.py --only robust --out scratch/sweep/conv3-e2.5 --eps 2.5 --threads 1

Three models, all seeded and reproducible on the same machine and torch build:

* fashion-standard: small ResNet, plain cross-entropy training.
* fashion-robust:   L2 PGD adversarial training (Madry et al.) of ConvNet3, a plain three-conv net
                    (--robust-arch conv3, the default), or of fashion-standard's architecture
                    (--robust-arch resnet, what shipped before).
* fashion-judge:    a different architecture (plain VGG-style CNN) with its own seed; it is
                    never used to synthesize anything, only to judge what the others make.

Every exported module takes pixels in [0, 1] of shape (N, 1, 28, 28), normalizes inside
(exactly once), returns logits from forward(), and exposes features() (the representation
the final linear layer reads: pooled for the ResNet and the judge, the flattened 3x3 map for
ConvNet3, whose last ReLU is a "fake ReLU" there). A sidecar JSON sits next to each .pt. The defaults are the settings of the models
that ship in models/; the sweep of robust candidates is in models/README.md.
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# Helpers shared with the other scripts (models/_common.py, next to this file); sha256 stays
# importable from here (fix_normalization.py imports it).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # leave no models/__pycache__ (in a checkout or an installed package)
from _common import sha256, write_json  # noqa: E402,F401

DATA_DIR = '/usr/share/datasets/fashion-mnist'
# The networks train on raw [0, 1] pixels (their first BatchNorm, or the judge's first conv, absorbs
# the scale), so the exported module's normalization is the identity. Exporting them with the data
# set's mean/std would normalize inputs the network never saw normalized: the double-normalization
# trap (measured: 9.9 % accuracy instead of 91.9 %).
CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
           'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
MEAN, STD = 0.0, 1.0


def read_idx(path):
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    magic = int.from_bytes(raw[0:4], 'big')
    ndim = magic & 0xff
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_split(split, data_dir=DATA_DIR):
    x = read_idx(os.path.join(data_dir, f'{split}-images-idx3-ubyte.gz'))
    y = read_idx(os.path.join(data_dir, f'{split}-labels-idx1-ubyte.gz'))
    x = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    return x, torch.from_numpy(y.astype(np.int64))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = nn.Sequential()
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.short(x))


class SmallResNet(nn.Module):
    """ResNet-style: stem, three stages (28 -> 14 -> 7), global pool, linear."""

    def __init__(self, width=16, classes=10):
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv2d(1, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU())
        self.layer1 = Block(w, w, 1)
        self.layer2 = Block(w, 2 * w, 2)
        self.layer3 = Block(2 * w, 4 * w, 2)
        self.fc = nn.Linear(4 * w, classes)

    def features(self, x):
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)

    def forward(self, x):
        return self.fc(self.features(x))


class ConvNet3(nn.Module):
    """Plain three-convolution network: (conv 3x3, ReLU, 2x2 max pool) x3 (28 -> 14 -> 7 -> 3), then
    one linear layer on the flattened 3x3 map. No BatchNorm, no skips: its input gradients follow
    the image closely, which is what synthesis uses."""

    def __init__(self, width=32, classes=10, pool='max'):
        super().__init__()
        w = width
        # pool='avg' (the conv3avg architecture): 2x2 average pooling, whose input gradient reaches
        # all four pixels of a window instead of the largest one.
        P = nn.MaxPool2d if pool == 'max' else nn.AvgPool2d
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(), P(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), P(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(), P(2))
        self.fc = nn.Linear(4 * w * 3 * 3, classes)

    def features(self, x):
        # The representation the linear layer reads, with a "fake ReLU" at the last ReLU: the value
        # is relu(h), the gradient passes as if it were h. Most of the 1,152 values are zero on a
        # noise image, and a real ReLU would give those units no gradient to rise from (feature
        # visualization from noise then fails for most units). forward() keeps the real ReLU, so
        # training and the logits are unaffected.
        b = self.body
        h = b[6](b[5](b[4](b[3](b[2](b[1](b[0](x)))))))
        h = h + (F.relu(h) - h).detach()
        return torch.flatten(b[8](h), 1)

    def forward(self, x):
        return self.fc(torch.flatten(self.body(x), 1))


# Robust architectures: --robust-arch name -> (constructor(width), card name, representation size,
# default width, what the card says of features()).
ROBUST_ARCHS = {
    'resnet': (lambda w: SmallResNet(width=w), lambda w: f'SmallResNet(width={w})', lambda w: 4 * w, 16,
               lambda w: {'layer': 'avgpool(layer3)', 'fakeRelu': False}),
    # shape: the flattened map's layout (channels, height, width), so tools can pick a channel's centre unit.
    'conv3': (lambda w: ConvNet3(width=w), lambda w: f'ConvNet3(width={w})', lambda w: 4 * w * 9, 32,
              lambda w: {'layer': 'flatten(maxpool(relu(conv3)))', 'shape': [4 * w, 3, 3], 'fakeRelu': True}),
    'conv3avg': (lambda w: ConvNet3(width=w, pool='avg'), lambda w: f'ConvNet3(width={w}, pool=avg)', lambda w: 4 * w * 9, 32,
                 lambda w: {'layer': 'flatten(avgpool(relu(conv3)))', 'shape': [4 * w, 3, 3], 'fakeRelu': True}),
}


class JudgeNet(nn.Module):
    """A different family on purpose: plain VGG-style convs, max pooling, dropout."""

    def __init__(self, classes=10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(128, classes)

    def features(self, x):
        return self.head(self.body(x))

    def forward(self, x):
        return self.fc(self.drop(self.features(x)))


class MlpJudgeNet(nn.Module):
    """A second judge from another family: no convolutions, no pooling (--only mlp-judge). It
    checks what transfer between convolutional networks might add to fashion-judge's figures;
    it does not ship."""

    def __init__(self, classes=10):
        super().__init__()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU())
        self.drop = nn.Dropout(0.3)
        self.fc = nn.Linear(256, classes)

    def features(self, x):
        return self.head(x)

    def forward(self, x):
        return self.fc(self.drop(self.features(x)))


class Exported(nn.Module):
    """What ships: pixels in [0,1] in, normalization inside (once), logits out."""

    def __init__(self, net, mean, std):
        super().__init__()
        self.net = net
        self.register_buffer('mean', torch.tensor([mean]).view(1, 1, 1, 1))
        self.register_buffer('std', torch.tensor([std]).view(1, 1, 1, 1))

    def forward(self, x):
        return self.net(self.net_input(x))

    def net_input(self, x):
        return (x - self.mean) / self.std

    @torch.jit.export
    def features(self, x):
        return self.net.features(self.net_input(x))


def l2_pgd(model, x, y, eps, steps):
    """Untargeted L2 PGD (maximize CE), random start; the reference's formulas."""
    step = 2.5 * eps / steps
    n = torch.randn_like(x)
    x_adv = (x + eps * n / n.flatten(1).norm(dim=1).view(-1, 1, 1, 1)).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y)
        g, = torch.autograd.grad(loss, x_adv)
        with torch.no_grad():
            g = g / (g.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-10)
            x_adv = x_adv + step * g
            d = (x_adv - x).renorm(p=2, dim=0, maxnorm=eps)
            x_adv = (x + d).clamp(0, 1)
    return x_adv.detach()


def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def train(name, model, xtr, ytr, xte, yte, epochs, seed, adv_eps=0.0, adv_steps=0, batch=128, lr=3e-3):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps_per_epoch = (len(xtr) + batch - 1) // batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    t0 = time.time()
    for ep in range(epochs):
        perm = torch.randperm(len(xtr), generator=g)
        model.train()
        seen, correct, total_loss = 0, 0, 0.0
        for it in range(steps_per_epoch):
            idx = perm[it * batch:(it + 1) * batch]
            xb, yb = xtr[idx], ytr[idx]
            # Random horizontal flips: Fashion-MNIST items are left/right symmetric.
            flip = torch.rand(len(xb), generator=g) < 0.5
            xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(3), xb)
            if adv_eps > 0:
                model.eval()  # attack with frozen BN statistics, as robustness does
                xb = l2_pgd(model, xb, yb, adv_eps, adv_steps)
                model.train()
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(yb)
            correct += (out.argmax(1) == yb).sum().item()
            total_loss += loss.item() * len(yb)
            if it % 100 == 0:
                print(f'[{name}] epoch {ep + 1}/{epochs} it {it}/{steps_per_epoch} '
                      f'loss {total_loss / seen:.3f} acc {correct / seen:.3f} '
                      f'{time.time() - t0:.0f}s', flush=True)
        acc = evaluate(model, xte, yte)
        print(f'[{name}] epoch {ep + 1} done: train acc {correct / seen:.4f} test acc {acc:.4f} '
              f'({time.time() - t0:.0f}s)', flush=True)
    model.eval()
    return time.time() - t0


def export(name, net, out_dir, meta):
    net.eval()
    try:
        mod = torch.jit.script(Exported(net, MEAN, STD))
    except Exception:
        # torch.jit.script re-reads this file's source: if it was edited while the model trained,
        # scripting fails. Keep the trained weights (load_state_dict + export, no retraining).
        torch.save(net.state_dict(), os.path.join(out_dir, f'{name}.state_dict.pt'))
        raise
    path = os.path.join(out_dir, f'{name}.pt')
    mod.save(path)
    sidecar = {
        'name': name,
        'format': 'robust-synth-model/1',
        'inputShape': [1, 28, 28],
        'channels': 1,
        'normalization': {'mean': [MEAN], 'std': [STD], 'inside': True},
        'classes': CLASSES,
        'representation': {'method': 'features', 'size': meta.pop('repSize'), **meta.pop('repInfo', {})},
        'torchVersion': torch.__version__,
        'sha256': sha256(path),
        **meta,
    }
    write_json(path[:-3] + '.json', sidecar)
    print(f'wrote {path} ({os.path.getsize(path) / 1e6:.2f} MB)', flush=True)


def build_parser():
    """The command line; its defaults are the shipped models' settings (test/trainer.test.ts checks
    them against models/fashion-robust.json)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--out', default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument('--only', default='standard,judge,robust',
                    help='comma-separated: standard, judge, robust, and mlp-judge (a second judge that does not ship)')
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    ap.add_argument('--epochs', type=int, default=6, help='epochs for standard and judge')
    ap.add_argument('--robust-epochs', type=int, default=5)
    ap.add_argument('--eps', type=float, default=1.5, help='L2 training radius of fashion-robust')
    ap.add_argument('--pgd-steps', type=int, default=5, help='attack steps per training batch of fashion-robust')
    ap.add_argument('--robust-arch', choices=sorted(ROBUST_ARCHS), default='conv3',
                    help='architecture of fashion-robust: resnet (SmallResNet), conv3 (ConvNet3) or conv3avg (ConvNet3 with average pooling)')
    ap.add_argument('--standard-arch', choices=sorted(ROBUST_ARCHS), default='resnet',
                    help='architecture of fashion-standard: resnet (SmallResNet, what ships) or conv3 (a control)')
    ap.add_argument('--robust-width', type=int, default=0,
                    help='channel width of fashion-robust (default: 16 for resnet, 32 for conv3)')
    ap.add_argument('--reexport', metavar='PT',
                    help='with --only robust: export the weights of this exported fashion-robust .pt again (no training)')
    ap.add_argument('--train-limit', type=int, default=0, help='use only the first N training images (smoke runs)')
    return ap


def main():
    args = build_parser().parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    xtr, ytr = load_split('train')
    xte, yte = load_split('t10k')
    if args.train_limit:
        xtr, ytr = xtr[:args.train_limit], ytr[:args.train_limit]
    os.makedirs(args.out, exist_ok=True)
    which = args.only.split(',')
    common = {'dataset': 'fashion-mnist', 'trainImages': len(xtr)}

    if 'standard' in which:
        # The shipped standard model is SmallResNet; --standard-arch conv3 trains the robust model's
        # architecture without the attack, the control that separates training from architecture.
        make, arch_name, rep_size, default_width, rep_info = ROBUST_ARCHS[args.standard_arch]
        torch.manual_seed(1)
        net = make(default_width)
        secs = train('fashion-standard', net, xtr, ytr, xte, yte, args.epochs, seed=1)
        export('fashion-standard', net, args.out, {
            **common, 'architecture': arch_name(default_width), 'robust': False, 'eps': 0,
            'training': {'epochs': args.epochs, 'seed': 1, 'seconds': round(secs)},
            'cleanAccuracyPython': evaluate(net, xte, yte), 'repSize': rep_size(default_width),
            'repInfo': rep_info(default_width)})
    # The judges: (option, name, constructor, card architecture, seed, representation size).
    for option, name, make_judge, arch, seed, rep in (
            ('judge', 'fashion-judge', JudgeNet, 'JudgeNet (VGG-style)', 7, 128),
            ('mlp-judge', 'fashion-judge-mlp', MlpJudgeNet, 'MlpJudgeNet (784-512-256-10)', 11, 256)):
        if option not in which:
            continue
        torch.manual_seed(seed)
        net = make_judge()
        secs = train(name, net, xtr, ytr, xte, yte, args.epochs, seed=seed)
        export(name, net, args.out, {
            **common, 'architecture': arch, 'robust': False, 'eps': 0, 'role': 'judge',
            'training': {'epochs': args.epochs, 'seed': seed, 'seconds': round(secs)},
            'cleanAccuracyPython': evaluate(net, xte, yte), 'repSize': rep})
    if 'robust' in which:
        make, arch_name, rep_size, default_width, rep_info = ROBUST_ARCHS[args.robust_arch]
        width = args.robust_width or default_width
        torch.manual_seed(2)
        net = make(width)
        training = {'epochs': args.robust_epochs, 'seed': 2, 'pgdSteps': args.pgd_steps,
                    'pgdStepSize': 2.5 * args.eps / args.pgd_steps, 'threads': args.threads}
        if args.reexport:
            # No training: the weights of an exported fashion-robust, exported again by this code
            # (e.g. after a change to features()); its card's training record is kept.
            src = torch.jit.load(args.reexport)
            net.load_state_dict({k[len('net.'):]: v for k, v in src.state_dict().items() if k.startswith('net.')})
            with open(args.reexport[:-3] + '.json') as f:
                training = json.load(f)['training']
        else:
            training['seconds'] = round(train('fashion-robust', net, xtr, ytr, xte, yte, args.robust_epochs, seed=2,
                                              adv_eps=args.eps, adv_steps=args.pgd_steps))
        export('fashion-robust', net, args.out, {
            **common, 'architecture': arch_name(width), 'robust': True, 'eps': args.eps,
            'constraint': '2', 'training': training,
            'cleanAccuracyPython': evaluate(net, xte, yte), 'repSize': rep_size(width), 'repInfo': rep_info(width)})


if __name__ == '__main__':
    sys.exit(main())
