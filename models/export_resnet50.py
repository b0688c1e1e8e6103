#!/usr/bin/python3
"""Export an ImageNet ResNet classifier to TorchScript for robust-synth.

    /usr/bin/python3 models/export_resnet50.py --madry imagenet_l2_3_0.pt --out models/resnet50-robust-l2-3.pt
    /usr/bin/python3 models/export_resnet50.py --torchvision resnet50-0676ba61.pth --out models/resnet50-standard.pt
    /usr/bin/python3 models/export_resnet50.py --random --out /tmp/resnet50-random.pt    # benchmarks, tests

The exported module takes pixels in [0, 1] of shape (N, 3, 224, 224), normalizes inside (exactly
once: never normalize before calling it), and returns logits. features(x) returns the 2048-d
pooled layer4 representation; with --fake-relu its last ReLU passes gradients through
unchanged (forward ReLU, backward identity), as the reference's feature tasks use.
A sidecar JSON (model card) is written next to the .pt.
"""
import argparse
import hashlib
import json
import os
import pickle
import sys

import torch
import torch.nn as nn
import torchvision

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
IMAGENETTE = [  # (name, ImageNet index, WordNet id)
    ('tench', 0, 'n01440764'), ('English springer', 217, 'n02102040'),
    ('cassette player', 482, 'n02979186'), ('chain saw', 491, 'n03000684'),
    ('church', 497, 'n03028079'), ('French horn', 566, 'n03394916'),
    ('garbage truck', 569, 'n03417042'), ('gas pump', 571, 'n03425413'),
    ('golf ball', 574, 'n03445777'), ('parachute', 701, 'n03888605'),
]
ARCHS = {'resnet18': torchvision.models.resnet18, 'resnet50': torchvision.models.resnet50}


class CheckpointError(Exception):
    pass


class LastBlock(nn.Module):
    """The final residual block of layer4, written out so its closing ReLU can be 'fake'."""

    def __init__(self, block, fake_relu: bool):
        super().__init__()
        self.block = block
        self.fake_relu = fake_relu
        self.bottleneck = hasattr(block, 'conv3')

    def forward(self, x):
        b = self.block
        out = torch.relu(b.bn1(b.conv1(x)))
        out = b.bn2(b.conv2(out))
        if self.bottleneck:
            out = b.bn3(b.conv3(torch.relu(out)))
        identity = x if b.downsample is None else b.downsample(x)
        out = out + identity
        if self.fake_relu:
            return out + (torch.relu(out) - out).detach()  # value of ReLU, gradient of identity
        return torch.relu(out)


class Exported(nn.Module):
    def __init__(self, net, mean, std, fake_relu=False):
        super().__init__()
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.body = nn.Sequential(net.layer1, net.layer2, net.layer3, *list(net.layer4.children())[:-1])
        self.last = LastBlock(list(net.layer4.children())[-1], fake_relu)
        self.plain_last = LastBlock(list(net.layer4.children())[-1], False)
        self.fc = net.fc
        self.register_buffer('mean', torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(std).view(1, 3, 1, 1))

    def trunk(self, x):
        return self.body(self.stem((x - self.mean) / self.std))

    def forward(self, x):
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.plain_last(self.trunk(x)), 1), 1))

    @torch.jit.export
    def features(self, x):
        return torch.flatten(nn.functional.adaptive_avg_pool2d(self.last(self.trunk(x)), 1), 1)


def load_checkpoint(path):
    """torch.load for files of any torch 1.x+ era: zip or legacy format, pickle or dill."""
    errors = []
    modules = [pickle]
    try:
        import dill  # robustness saved some entries with dill
        modules.append(dill)
    except ImportError:
        pass
    for mod in modules:
        try:
            return torch.load(path, map_location='cpu', pickle_module=mod)
        except Exception as e:  # noqa: BLE001 - report every attempt
            errors.append(f'{mod.__name__}: {e}')
    raise CheckpointError(f'cannot read {path} as a torch checkpoint ({"; ".join(errors)})')


def madry_state_dict(ckpt):
    """Returns (model state dict, mean, std) from a robustness checkpoint."""
    if isinstance(ckpt, dict) and 'model' in ckpt and isinstance(ckpt['model'], dict):
        sd = ckpt['model']
    elif isinstance(ckpt, dict) and 'state_dict' in ckpt:
        sd = ckpt['state_dict']
    elif isinstance(ckpt, dict) and all(torch.is_tensor(v) for v in ckpt.values()):
        sd = ckpt
    else:
        keys = list(ckpt.keys()) if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"no 'model' or 'state_dict' entry in the checkpoint (found {keys})")
    sd = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in sd.items()}
    prefix = 'model.' if any(k.startswith('model.') for k in sd) else (
        'attacker.model.' if any(k.startswith('attacker.model.') for k in sd) else None)
    if prefix is None:
        raise CheckpointError("no 'module.model.*' or 'module.attacker.model.*' weights in the checkpoint "
                              f'(first keys: {list(sd)[:5]})')
    model_sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    for norm_prefix in ('normalizer.', 'attacker.normalizer.'):
        if norm_prefix + 'new_mean' in sd:
            mean = sd[norm_prefix + 'new_mean'].flatten().tolist()
            std = sd[norm_prefix + 'new_std'].flatten().tolist()
            break
    return model_sd, mean, std


def check_keys(net, sd):
    want = set(net.state_dict().keys())
    have = set(sd.keys())
    missing, unexpected = sorted(want - have), sorted(have - want)
    if missing or unexpected:
        def show(ks):
            return ', '.join(ks[:8]) + (f' (+{len(ks) - 8} more)' if len(ks) > 8 else '')
        raise CheckpointError('the weights do not fit a torchvision ' + net.__class__.__name__ +
                              (f'; missing keys: {show(missing)}' if missing else '') +
                              (f'; unexpected keys: {show(unexpected)}' if unexpected else ''))
    for k, v in net.state_dict().items():
        if v.shape != sd[k].shape:
            raise CheckpointError(f'shape mismatch for {k}: checkpoint {tuple(sd[k].shape)}, model {tuple(v.shape)}')


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument('--madry', metavar='CHECKPOINT', help='a MadryLab robustness checkpoint (e.g. imagenet_l2_3_0.pt)')
    src.add_argument('--torchvision', metavar='STATE_DICT', help='a torchvision ResNet state dict (.pth)')
    src.add_argument('--random', action='store_true', help='random weights (benchmarks and tests)')
    ap.add_argument('--out', required=True)
    ap.add_argument('--arch', choices=sorted(ARCHS), default='resnet50')
    ap.add_argument('--name', help='model name in the card (default: the output file name)')
    ap.add_argument('--eps', type=float, help='robust training radius to record (default 3.0 for --madry)')
    ap.add_argument('--fake-relu', action='store_true', help="features(): gradient passes the last ReLU unchanged")
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args(argv)

    torch.manual_seed(args.seed)
    net = ARCHS[args.arch](num_classes=1000)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    source, robust = None, False
    try:
        if args.madry:
            sd, mean, std = madry_state_dict(load_checkpoint(args.madry))
            source, robust = args.madry, True
        elif args.torchvision:
            sd = load_checkpoint(args.torchvision)
            if isinstance(sd, dict) and 'state_dict' in sd:
                sd = sd['state_dict']
            if not isinstance(sd, dict):
                raise CheckpointError(f'{args.torchvision} holds a {type(sd).__name__}, not a state dict')
            source = args.torchvision
        else:
            sd = None
        if sd is not None:
            check_keys(net, sd)
            net.load_state_dict(sd)
    except CheckpointError as e:
        print(f'export_resnet50: {e}', file=sys.stderr)
        return 2
    net.eval()
    module = torch.jit.script(Exported(net, mean, std, args.fake_relu).eval())
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + '.partial'
    module.save(tmp)
    os.replace(tmp, args.out)

    categories = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta['categories']
    card = {
        'name': args.name or os.path.splitext(os.path.basename(args.out))[0],
        'format': 'robust-synth-model/1',
        'architecture': args.arch,
        'inputShape': [3, 224, 224],
        'channels': 3,
        'normalization': {'mean': mean, 'std': std, 'inside': True},
        'classes': list(categories),
        'subsets': {'imagenette': [{'name': n, 'index': i, 'wnid': w} for n, i, w in IMAGENETTE]},
        'representation': {'method': 'features', 'size': net.fc.in_features, 'fakeRelu': args.fake_relu},
        'robust': robust,
        'eps': (args.eps if args.eps is not None else 3.0) if robust else (args.eps or 0),
        'constraint': '2' if robust else None,
        'weights': 'random' if args.random else ('madrylab-robustness' if args.madry else 'torchvision'),
        'source': os.path.basename(source) if source else None,
        'sourceSha256': sha256(source) if source else None,
        'torchVersion': torch.__version__,
        'sha256': sha256(args.out),
    }
    with open(os.path.splitext(args.out)[0] + '.json', 'w') as f:
        json.dump(card, f, indent=2)
        f.write('\n')
    print(f'wrote {args.out} and its model card', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
