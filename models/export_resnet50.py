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

--madry reads a checkpoint of the MadryLab robustness library, as its train.py saves it
(ch.save({'model': model.state_dict(), 'optimizer': ..., 'schedule': ..., 'epoch': ...},
pickle_module=dill)): the 'model' entry (older files: 'state_dict'; or a bare state dict) holds
the AttackerModel's state dict, keys prefixed 'module.' (or not, if it was not wrapped in a
DataParallel): 'module.model.*' (a torchvision ResNet), 'module.normalizer.new_mean'/'new_std'
(used as the normalization), and the Attacker's copies 'module.attacker.model.*' and
'module.attacker.normalize.new_mean'/'new_std' (used only when 'module.model.*' is absent).
Any other key is an error. Files of any torch era load: zip or legacy format, pickled with
pickle or with dill.
Checkpoints are pickles: only export files from a source you trust.

The training radius recorded in the card comes from --eps, or from the file name
(imagenet_l2_3_0.pt: L2 3.0; imagenet_linf_4.pt: Linf 4/255; resnet50_l2_eps3.ckpt: L2 3.0).

Exit status: 0 on success; 2 with a one-line message on stderr when the checkpoint cannot be
read or does not fit the architecture (the message names the missing/unexpected keys).
"""
import argparse
import inspect
import os
import pickle
import re
import sys
import warnings
from collections.abc import Mapping

import torch
import torch.nn as nn
import torchvision

# The helpers shared with the other scripts sit next to this file (models/_common.py); put this
# directory first on the path so that the script runs by absolute path from any directory.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # leave no models/__pycache__ (in a checkout or an installed package)
from _common import one_line, sha256, write_json  # noqa: E402

try:
    import dill  # the robustness library saves its checkpoints with pickle_module=dill
except ImportError:  # pragma: no cover - depends on the machine
    dill = None

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
IMAGENETTE = [  # (name, ImageNet index, WordNet id)
    ('tench', 0, 'n01440764'), ('English springer', 217, 'n02102040'),
    ('cassette player', 482, 'n02979186'), ('chain saw', 491, 'n03000684'),
    ('church', 497, 'n03028079'), ('French horn', 566, 'n03394916'),
    ('garbage truck', 569, 'n03417042'), ('gas pump', 571, 'n03425413'),
    ('golf ball', 574, 'n03445777'), ('parachute', 701, 'n03888605'),
]
ARCHS = {
    'resnet18': torchvision.models.resnet18, 'resnet34': torchvision.models.resnet34,
    'resnet50': torchvision.models.resnet50, 'resnet101': torchvision.models.resnet101,
    'resnet152': torchvision.models.resnet152,
}
# (bottleneck blocks?, blocks in layer3) -> architecture, to suggest --arch when the keys do not fit.
ARCH_SIGNATURES = {(False, 2): 'resnet18', (False, 6): 'resnet34', (True, 6): 'resnet50',
                   (True, 23): 'resnet101', (True, 36): 'resnet152'}


# The robustness library's AttackerModel (robustness/attacker.py) holds `normalizer`, an
# InputNormalize (robustness/tools/helpers.py) with buffers new_mean/new_std of shape [3, 1, 1],
# and `model`, the classifier; and `attacker`, an Attacker whose `model` is the same classifier
# (saved twice in the state dict, as one storage) and whose own InputNormalize, built from the
# same data set mean/std, is named `normalize` (not `normalizer`). Some development branches of the
# library have no `attacker`. train.py saves AttackerModel.state_dict() from a DataParallel, so
# every key starts with 'module.'.
MADRY_MODEL = 'model.'
MADRY_NORMALIZER = 'normalizer.'
MADRY_ATTACKER_MODEL = 'attacker.model.'
MADRY_ATTACKER_NORMALIZER = 'attacker.normalize.'


class CheckpointError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# The exported module
# --------------------------------------------------------------------------------------------

class BottleneckPreAct(nn.Module):
    """A torchvision Bottleneck up to (not including) its closing ReLU."""

    def __init__(self, block):
        super().__init__()
        self.conv1, self.bn1 = block.conv1, block.bn1
        self.conv2, self.bn2 = block.conv2, block.bn2
        self.conv3, self.bn3 = block.conv3, block.bn3
        self.downsample = block.downsample if block.downsample is not None else nn.Identity()

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return out + self.downsample(x)


class BasicPreAct(nn.Module):
    """A torchvision BasicBlock up to (not including) its closing ReLU."""

    def __init__(self, block):
        super().__init__()
        self.conv1, self.bn1 = block.conv1, block.bn1
        self.conv2, self.bn2 = block.conv2, block.bn2
        self.downsample = block.downsample if block.downsample is not None else nn.Identity()

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return out + self.downsample(x)


class Exported(nn.Module):
    """pixels in [0, 1] -> normalize (once) -> ResNet -> logits; features() = pooled layer4."""

    def __init__(self, net, mean, std, fake_relu=False):
        super().__init__()
        blocks = list(net.layer4.children())
        last = blocks[-1]
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.body = nn.Sequential(net.layer1, net.layer2, net.layer3, *blocks[:-1])
        # The last block without its closing ReLU: forward() applies a real ReLU, features() a
        # fake one when asked. Same parameters as `net` (shared, saved once).
        self.last = BottleneckPreAct(last) if hasattr(last, 'conv3') else BasicPreAct(last)
        self.fc = net.fc
        self.fake_relu = fake_relu
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def _pre_relu(self, x):
        return self.last(self.body(self.stem((x - self.mean) / self.std)))

    def forward(self, x):
        rep = torch.flatten(nn.functional.adaptive_avg_pool2d(torch.relu(self._pre_relu(x)), 1), 1)
        return self.fc(rep)

    @torch.jit.export
    def features(self, x):
        out = self._pre_relu(x)
        if self.fake_relu:
            out = out + (torch.relu(out) - out).detach()  # value of a ReLU, gradient of the identity
        else:
            out = torch.relu(out)
        return torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1)


# --------------------------------------------------------------------------------------------
# Reading checkpoints
# --------------------------------------------------------------------------------------------

def _torch_load(path, pickle_module):
    kwargs = {'map_location': 'cpu', 'pickle_module': pickle_module}
    if 'weights_only' in inspect.signature(torch.load).parameters:
        kwargs['weights_only'] = False  # torch >= 2.6 defaults to True, which refuses these files
    # Debian's torch 1.13.0a0 ignores pickle_module (torch.load sets it to the `pickle` module it
    # imported); pointing that name at the module we want makes dill work there too.
    saved = torch.serialization.pickle
    torch.serialization.pickle = pickle_module
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            return torch.load(path, **kwargs)
    finally:
        torch.serialization.pickle = saved


def load_checkpoint(path):
    """torch.load for files of any torch era: zip or legacy format, pickle or dill."""
    if not os.path.exists(path):
        raise CheckpointError(f'{path}: no such file')
    if os.path.isdir(path):
        raise CheckpointError(f'{path} is a directory, not a checkpoint file')
    errors = {}
    for mod in [pickle] + ([dill] if dill else []):
        try:
            obj = _torch_load(path, mod)
        except Exception as e:  # noqa: BLE001 - report every attempt
            errors[mod.__name__] = f'{type(e).__name__}: {one_line(e)}'
            continue
        if isinstance(obj, torch.jit.ScriptModule):
            raise CheckpointError(f'{path} is a TorchScript module (an exported model?), not a checkpoint')
        return obj
    hint = '' if dill else ('; dill is not installed, and robustness checkpoints may need it '
                            '(apt-get install python3-dill, or pip install dill)')
    if len(set(errors.values())) == 1:
        why = next(iter(errors.values()))
    else:
        why = '; '.join(f'with {m}: {e}' for m, e in errors.items())
    raise CheckpointError(f'cannot read {path} as a torch checkpoint ({why}){hint}')


def _as_state_dict(obj, what):
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointError(f'{what} holds a {type(obj).__name__}, not a state dict')
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f'{what} is not a state dict: entries that are not tensors: {show(bad)}')
    return obj


def show(keys, limit=8):
    keys = list(keys)
    return ', '.join(keys[:limit]) + (f' (+{len(keys) - limit} more)' if len(keys) > limit else '')


def _strip(prefix, keys):
    return {k[len(prefix):]: v for k, v in keys.items() if k.startswith(prefix)}


def madry_state_dict(ckpt):
    """(model state dict, its key prefix in the file, mean, std, info) from a robustness checkpoint.

    info records where things came from, for the model card."""
    if isinstance(ckpt, Mapping) and 'model' in ckpt:
        entry, sd = 'model', ckpt['model']
    elif isinstance(ckpt, Mapping) and 'state_dict' in ckpt:
        entry, sd = 'state_dict', ckpt['state_dict']
    elif isinstance(ckpt, Mapping) and ckpt and all(torch.is_tensor(v) for v in ckpt.values()):
        entry, sd = None, ckpt  # a bare state dict
    elif isinstance(ckpt, Mapping):
        raise CheckpointError("no 'model' or 'state_dict' entry in the checkpoint "
                              f'(its entries: {show(map(str, ckpt.keys())) or "none"})')
    else:
        raise CheckpointError(f'the checkpoint holds a {type(ckpt).__name__}, not a dict with a state dict')
    sd = _as_state_dict(sd, f"the checkpoint's '{entry}' entry" if entry else 'the checkpoint')
    # train.py saves the AttackerModel inside a DataParallel: every key starts with 'module.'.
    # Without it (an unwrapped AttackerModel's state dict), the keys are the same minus the prefix.
    mp = 'module.' if all(k.startswith('module.') for k in sd) else ''  # as the file names its keys
    sd = {k[len(mp):]: v for k, v in sd.items()}

    model_sd, attacker_sd = _strip(MADRY_MODEL, sd), _strip(MADRY_ATTACKER_MODEL, sd)
    norms = {p: (sd.get(p + 'new_mean'), sd.get(p + 'new_std')) for p in (MADRY_NORMALIZER, MADRY_ATTACKER_NORMALIZER)}
    known = {p + b for p in (MADRY_NORMALIZER, MADRY_ATTACKER_NORMALIZER) for b in ('new_mean', 'new_std')}
    other = [k for k in sd if k not in known and not k.startswith((MADRY_MODEL, MADRY_ATTACKER_MODEL))]
    if other and not model_sd and not attacker_sd and 'conv1.weight' in sd and 'fc.weight' in sd:
        raise CheckpointError(f'this looks like a torchvision state dict (keys {mp}conv1.weight ... {mp}fc.weight, '
                              'no AttackerModel keys): export it with --torchvision, not --madry')
    if other:
        expected = [f'{mp}{MADRY_MODEL}*', f'{mp}{MADRY_NORMALIZER}new_mean', f'{mp}{MADRY_NORMALIZER}new_std',
                    f'{mp}{MADRY_ATTACKER_MODEL}*', f'{mp}{MADRY_ATTACKER_NORMALIZER}new_mean',
                    f'{mp}{MADRY_ATTACKER_NORMALIZER}new_std']
        raise CheckpointError(f'unexpected keys for a robustness AttackerModel: {show(mp + k for k in other)} '
                              f'(expected only {", ".join(expected)})')
    if model_sd:
        weights, prefix, order = model_sd, f'{mp}{MADRY_MODEL}', (MADRY_NORMALIZER, MADRY_ATTACKER_NORMALIZER)
    elif attacker_sd:
        weights, prefix, order = attacker_sd, f'{mp}{MADRY_ATTACKER_MODEL}', (MADRY_ATTACKER_NORMALIZER, MADRY_NORMALIZER)
    else:
        raise CheckpointError(f"no '{mp}{MADRY_MODEL}*' or '{mp}{MADRY_ATTACKER_MODEL}*' weights in the checkpoint "
                              f'(its keys: {show(mp + k for k in sd)})')
    mean, std, norm_from = IMAGENET_MEAN, IMAGENET_STD, None
    for p in order:
        m, s = norms[p]
        if m is None and s is None:
            continue
        if m is None or s is None or m.numel() != 3 or s.numel() != 3:
            raise CheckpointError(f'{mp}{p}new_mean/new_std must both be present with 3 values each '
                                  f'(found shapes {None if m is None else tuple(m.shape)}, '
                                  f'{None if s is None else tuple(s.shape)})')
        # float32 -> Python float is exact: the exported buffers hold the checkpoint's very values.
        mean, std, norm_from = m.float().flatten().tolist(), s.float().flatten().tolist(), f'{mp}{p}new_mean/new_std'
        break
    if min(std) <= 0:
        raise CheckpointError(f'the normalizer std {std} is not positive')
    info = {'entry': entry, 'weights': prefix + '*', 'normalization': norm_from or 'ImageNet default (none in checkpoint)'}
    return weights, prefix, mean, std, info


def torchvision_state_dict(obj):
    """(state dict, key prefix in the file) from a torchvision state dict file."""
    what = 'the file'
    if isinstance(obj, Mapping) and not all(torch.is_tensor(v) for v in obj.values()):
        for key in ('state_dict', 'model'):
            if key in obj:
                obj, what = obj[key], f"the file's '{key}' entry"
                break
    sd = _as_state_dict(obj, what)
    prefix = ''
    if all(k.startswith('module.') for k in sd):  # saved from a DataParallel
        sd, prefix = {k[len('module.'):]: v for k, v in sd.items()}, 'module.'
    if any(k.startswith(('model.', 'normalizer.', 'attacker.')) for k in sd):
        raise CheckpointError('this looks like a MadryLab robustness checkpoint (keys module.model.* / '
                              'module.normalizer.*); export it with --madry, not --torchvision')
    return sd, prefix


def guess_arch(sd):
    bottleneck = 'layer1.0.conv3.weight' in sd
    blocks = {int(m.group(1)) for k in sd for m in [re.match(r'layer3\.(\d+)\.', k)] if m}
    return ARCH_SIGNATURES.get((bottleneck, len(blocks)))


def check_keys(net, sd, arch, prefix=''):
    """Checks the weights against torchvision's `arch`; errors name keys as the file has them (with `prefix`)."""
    want = net.state_dict()
    # BatchNorm's num_batches_tracked only counts training steps and is absent from files of
    # old torch versions; torch's own load_state_dict accepts their absence too.
    missing = sorted(prefix + k for k in want if k not in sd and not k.endswith('num_batches_tracked'))
    unexpected = sorted(prefix + k for k in sd if k not in want)
    if missing or unexpected:
        guess = guess_arch(sd)
        hint = f'; the weights look like a {guess}: pass --arch {guess}' if guess and guess != arch else ''
        raise CheckpointError(f'the weights do not fit a torchvision {arch}' +
                              (f'; missing keys: {show(missing)}' if missing else '') +
                              (f'; unexpected keys: {show(unexpected)}' if unexpected else '') + hint)
    wrong = [f'{prefix}{k} (checkpoint {tuple(sd[k].shape)}, {arch} {tuple(v.shape)})'
             for k, v in want.items() if k in sd and sd[k].shape != v.shape]
    if wrong:
        raise CheckpointError(f'shape mismatch for {show(wrong, 4)}')
    full = dict(sd)
    for k, v in want.items():
        full.setdefault(k, v)  # only num_batches_tracked can be missing here
    return full


def infer_eps(path):
    """(constraint, eps) from the robustness file names, or None."""
    name = os.path.basename(path).lower()
    if re.search(r'(^|_)nat(\.|_|$)', name):
        return '2', 0.0
    m = re.search(r'_l2_(\d+)_(\d+)\.', name)  # imagenet_l2_3_0.pt
    if m:
        return '2', float(f'{m.group(1)}.{m.group(2)}')
    m = re.search(r'_l2_eps(\d+(?:\.\d+)?)\.', name)  # resnet50_l2_eps3.ckpt
    if m:
        return '2', float(m.group(1))
    m = re.search(r'_linf_(?:eps)?(\d+(?:\.\d+)?)\.', name)  # imagenet_linf_4.pt, resnet50_linf_eps4.0.ckpt
    if m:
        return 'inf', float(m.group(1)) / 255
    return None


# --------------------------------------------------------------------------------------------

def verify(module, net, mean, std, fake_relu):
    """Checks the scripted module against the eager torchvision net on a random batch."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 128, 128, generator=g)  # any size works (adaptive pooling); small is quick
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        trunk = nn.Sequential(*list(net.children())[:-1])  # conv1 ... layer4, avgpool
        ref_rep = torch.flatten(trunk((x - m) / s), 1)
        ref = net.fc(ref_rep)
        got, got_rep = module(x), module.features(x)
    d_logits = (got - ref).abs().max().item()
    d_rep = (got_rep - ref_rep).abs().max().item()
    scale = max(1.0, ref.abs().max().item())
    if not (d_logits <= 1e-4 * scale and d_rep <= 1e-4 * max(1.0, ref_rep.abs().max().item())):
        raise CheckpointError(f'internal check failed: the exported module differs from torchvision '
                              f'(logits {d_logits:.3g}, features {d_rep:.3g})')
    return {'maxAbsLogitDiff': d_logits, 'maxAbsFeatureDiff': d_rep, 'fakeRelu': fake_relu}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument('--madry', metavar='CHECKPOINT', help='a MadryLab robustness checkpoint (e.g. imagenet_l2_3_0.pt)')
    src.add_argument('--torchvision', metavar='STATE_DICT', help='a torchvision ResNet state dict (e.g. resnet50-0676ba61.pth)')
    src.add_argument('--random', action='store_true', help='random weights (benchmarks and tests)')
    ap.add_argument('--out', required=True, help='the TorchScript file to write (*.pt); its card goes next to it (*.json)')
    ap.add_argument('--arch', choices=sorted(ARCHS), default='resnet50')
    ap.add_argument('--name', help='model name in the card (default: the output file name)')
    ap.add_argument('--eps', type=float, help='robust training radius to record (default for --madry: from the file name)')
    ap.add_argument('--constraint', choices=['2', 'inf'], help="the norm of --eps (default '2', or from the file name)")
    ap.add_argument('--fake-relu', action='store_true', help='features(): gradient passes the last ReLU unchanged')
    ap.add_argument('--no-verify', action='store_true', help='skip comparing the exported module with torchvision')
    ap.add_argument('--seed', type=int, default=0, help='seed of --random')
    args = ap.parse_args(argv)
    if not args.out.endswith('.pt'):
        ap.error('--out must end in .pt (the model card is written next to it, as .json)')

    torch.manual_seed(args.seed)
    net = ARCHS[args.arch](num_classes=1000)
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    source, origin = None, {}
    constraint, eps = args.constraint or '2', args.eps if args.eps is not None else 0.0
    try:
        sd, prefix = None, ''
        if args.madry:
            sd, prefix, mean, std, origin = madry_state_dict(load_checkpoint(args.madry))
            source = args.madry
            if args.eps is None:
                guess = infer_eps(args.madry)
                if guess is None:
                    raise CheckpointError(f'cannot tell the training radius from the name {os.path.basename(args.madry)}; '
                                          'pass --eps (and --constraint inf for an Linf model; eps 0 for a standard one)')
                constraint, eps = (args.constraint or guess[0]), guess[1]
        elif args.torchvision:
            sd, prefix = torchvision_state_dict(load_checkpoint(args.torchvision))
            source = args.torchvision
        if sd is not None:
            net.load_state_dict(check_keys(net, sd, args.arch, prefix))
        net.eval()
        module = torch.jit.script(Exported(net, mean, std, args.fake_relu).eval())
        check = None if args.no_verify else verify(module, net, mean, std, args.fake_relu)
    except CheckpointError as e:
        print(f'export_resnet50: {e}', file=sys.stderr)
        return 2
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + '.partial'
    module.save(tmp)
    os.replace(tmp, args.out)

    robust = eps > 0
    categories = torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta['categories']
    card = {
        'name': args.name or os.path.splitext(os.path.basename(args.out))[0],
        'format': 'robust-synth-model/1',
        'architecture': args.arch,
        'dataset': 'imagenet',
        'inputShape': [3, 224, 224],
        'channels': 3,
        'inputRange': [0, 1],
        'normalization': {'mean': mean, 'std': std, 'inside': True,
                          'source': origin.get('normalization', 'ImageNet default')},
        'classes': list(categories),
        'subsets': {'imagenette': [{'name': n, 'index': i, 'wnid': w} for n, i, w in IMAGENETTE]},
        'representation': {'method': 'features', 'size': net.fc.in_features, 'layer': 'avgpool(layer4)',
                           'fakeRelu': args.fake_relu},
        'robust': robust,
        'eps': eps,
        'constraint': constraint if robust else None,
        'role': 'robust' if robust else ('random' if args.random else 'standard'),
        'weights': 'random' if args.random else ('madrylab-robustness' if args.madry else 'torchvision'),
        'source': os.path.basename(source) if source else None,
        'sourceSha256': sha256(source) if source else None,
        'sourceLayout': origin or None,
        'torchVersion': torch.__version__,
        'torchvisionVersion': torchvision.__version__,
        'exportCheck': check,
        'sha256': sha256(args.out),
    }
    write_json(os.path.splitext(args.out)[0] + '.json', card)
    print(f'wrote {args.out} and its model card', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
