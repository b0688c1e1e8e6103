#!/usr/bin/python3
"""Exports a TorchScript image classifier for the TensorFlow.js peer of `npm run bench`
(bench/tfjs-peer.ts): the module's forward() as a flat list of ops plus its weights, converted
to TF.js's NHWC layout.

    /usr/bin/python3 bench/export_tfjs_weights.py --model models/fashion-robust.pt \
        --shape 1,28,28 --out bench/out/fashion-robust.tfjs.json

Writes OUT (the op list, JSON) and OUT with .bin instead of .json (the weights, little-endian
float32). The module is frozen (eval mode: BatchNorm folds into the preceding convolution, exactly
what the native library's default preparation does) and its graph is walked generically, op by
op, so any architecture made of the ops below exports without changes: the SmallResNet of
models/train_fashion.py, its VGG-style judge, a plain stack of convolutions. Whatever the module
does to its input, normalization included (the model cards say `"inside": true`: the module
normalizes), is in the graph and exported with it, so the peer feeds the same [0, 1] pixels as the
native loop. Shape checks that TorchScript compiled into the graph (`if x.dim() != 4: raise`)
are evaluated here, on an example input of the given shape.

Supported tensor ops: conv2d (groups 1), batch_norm (eval), linear, addmm, relu, leaky_relu,
sigmoid, tanh, add/sub/mul/div (with tensors or scalars), adaptive_avg_pool2d to 1x1, mean over
H and W, max_pool2d, avg_pool2d, flatten, view/reshape to (batch, -1), dropout (eval: the
identity), contiguous. Anything else stops the export with a message naming the op and the
source line it came from.

The exporter runs its own op list in PyTorch on an example batch and checks the result against the
module's forward (max abs difference of the logits <= 1e-4); the JSON carries that batch and its
logits so the TF.js side can check itself the same way after loading.
"""
import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no models/__pycache__ in the package directory
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'models'))
from _common import sha256  # noqa: E402


class ExportError(Exception):
    pass


def where(node):
    """The source line a graph node came from, for error messages."""
    r = node.sourceRange().strip().split('\n')
    return r[0][:160] if r else '?'


class Exporter:
    """Walks a frozen TorchScript graph. Every value is either a Python value (ints, lists, bools:
    evaluated here), a constant tensor (a weight), or an activation (`Act`: a tensor computed from
    the input, which becomes an op in the list). Activations are also computed in PyTorch on the
    example batch, so the op list is checked against the module as it is built."""

    def __init__(self):
        self.ops = []
        self.tensors = []  # {name, shape, offset, length}
        self.blob = []  # float32 chunks
        self.offset = 0
        self.nact = 0
        self.const_names = {}

    # -- values --------------------------------------------------------------------------------
    class Act:
        def __init__(self, ident, value):
            self.id = ident  # name in the op list
            self.value = value  # torch tensor on the example batch (NCHW, as PyTorch computes it)

    def new_act(self, value):
        self.nact += 1
        return Exporter.Act(f'a{self.nact}', value)

    def weight(self, t, layout, hint):
        """Stores a constant tensor in TF.js layout; returns its name.
        layout: 'conv' (OIHW -> HWIO), 'linear' (out,in -> in,out), 'nhwc' (an operand broadcast
        against a rank-4 activation: padded to rank 4 in NCHW, then NHWC), 'plain'."""
        key = (id(t), layout)
        if key in self.const_names:
            return self.const_names[key]
        t = t.detach().float()
        if layout == 'conv':
            t = t.permute(2, 3, 1, 0)
        elif layout == 'linear':
            t = t.t()
        elif layout == 'nhwc':
            while t.dim() < 4:
                t = t.unsqueeze(0)
            t = t.permute(0, 2, 3, 1)
        t = t.contiguous()
        name = f'w{len(self.tensors)}_{hint}'[:80]
        self.tensors.append({'name': name, 'shape': list(t.shape), 'offset': self.offset, 'length': t.numel()})
        self.blob.append(t.flatten().numpy().astype('<f4').tobytes())
        self.offset += t.numel()
        self.const_names[key] = name
        return name

    def emit(self, op, out_value, **attrs):
        a = self.new_act(out_value)
        self.ops.append({'op': op, 'out': a.id, **attrs})
        return a

    # -- graph walking -------------------------------------------------------------------------
    def run_block(self, block, env):
        for node in block.nodes():
            outs = self.run_node(node, env)
            for o, v in zip(node.outputs(), outs):
                env[o.debugName()] = v
        return [env[o.debugName()] for o in block.outputs()]

    def run_node(self, node, env):
        k = node.kind()
        ins = [env.get(i.debugName(), _MISSING) for i in node.inputs()]
        if any(v is _MISSING for v in ins):
            raise ExportError(f'{k}: an input was not computed (unsupported graph form) at {where(node)}')
        if k == 'prim::Constant':
            out = node.output()
            if not node.attributeNames():
                return [None]
            v = out.toIValue()
            return [v]
        if k == 'prim::ListConstruct' or k == 'prim::TupleConstruct':
            return [list(ins)]
        if k == 'prim::ListUnpack' or k == 'prim::TupleUnpack':
            return list(ins[0])
        if k == 'prim::If':
            cond = ins[0]
            if not isinstance(cond, bool):
                raise ExportError(f'prim::If on a value computed from the input (data-dependent control flow) at {where(node)}')
            blocks = list(node.blocks())
            return self.run_block(blocks[0] if cond else blocks[1], env)
        if k == 'prim::RaiseException':
            raise ExportError(f'the module raises on an input of this shape: {ins[0]!r} at {where(node)}')
        if k in ('aten::warn', 'prim::Print'):
            return []
        if k == 'aten::size':
            t = ins[0]
            shape = list(t.value.shape) if isinstance(t, Exporter.Act) else list(t.shape)
            if len(ins) > 1:
                d = ins[1]
                return [Dyn(shape[d]) if d in (0, -len(shape)) else shape[d]]
            return [[Dyn(shape[0])] + shape[1:]]
        if k == 'aten::dim':
            t = ins[0]
            return [(t.value if isinstance(t, Exporter.Act) else t).dim()]
        if k == 'aten::len':
            return [len(ins[0])]
        if k == 'aten::__getitem__':
            return [ins[0][ins[1]]]
        if k in _INT_OPS and all(isinstance(v, (int, float, bool)) for v in ins[:2]):
            a, b = (int(v) if isinstance(v, Dyn) else v for v in ins[:2])
            return [_INT_OPS[k](a, b)]
        if k in ('aten::Int', 'aten::Float', 'aten::Bool'):
            return [ins[0]]
        if k == 'aten::__not__':
            return [not ins[0]]
        if k.startswith('aten::') or k.startswith('prim::'):
            return [self.tensor_op(node, k, ins)]
        raise ExportError(f'unsupported node {k} at {where(node)}')

    def tensor_op(self, node, k, ins):
        name = k.split('::')[1].rstrip('_')  # in-place variants (relu_, add_) compute the same here
        x = ins[0] if ins else None
        if not isinstance(x, Exporter.Act):
            if name in ('add', 'sub', 'mul', 'div') and len(ins) > 1 and isinstance(ins[1], Exporter.Act):
                pass  # constant op activation: handled below
            elif name == 'addmm' and len(ins) > 1 and isinstance(ins[1], Exporter.Act):
                pass  # addmm(bias, x, w.t())
            else:
                raise ExportError(f'{k} on a constant (not computed from the input) at {where(node)}: not supported')
        if name in ('contiguous', 'dropout', 'feature_dropout', 'alpha_dropout', 'detach'):
            if name.endswith('dropout') and ins[2]:
                raise ExportError(f'{k} in training mode at {where(node)}')
            return x
        if name == 'conv2d':
            _, w, b, stride, pad, dil, groups = ins
            if isinstance(pad, str):
                raise ExportError(f"conv2d with padding='{pad}' at {where(node)}: not supported")
            if groups != 1:
                raise ExportError(f'conv2d with groups={groups} at {where(node)}: not supported')
            val = F.conv2d(x.value, w, b, stride, pad, dil, groups)
            return self.emit('conv2d', val, x=x.id, w=self.weight(w, 'conv', 'conv'),
                             b=self.weight(b, 'plain', 'bias') if b is not None else None,
                             stride=_pair(stride), pad=_pair(pad), dilation=_pair(dil))
        if name == 'batch_norm':
            _, w, b, mean, var, training, _mom, eps, _cudnn = ins
            if training:
                raise ExportError(f'batch_norm in training mode at {where(node)} (export the module in eval mode)')
            if x.value.dim() != 4:
                raise ExportError(f'batch_norm on a rank-{x.value.dim()} tensor at {where(node)}: only 2-d (NCHW) is supported')
            val = F.batch_norm(x.value, mean, var, w, b, False, 0.0, eps)
            return self.emit('batchnorm', val, x=x.id, mean=self.weight(mean, 'plain', 'bn_mean'), variance=self.weight(var, 'plain', 'bn_var'),
                             scale=self.weight(w, 'plain', 'bn_w') if w is not None else None,
                             offset=self.weight(b, 'plain', 'bn_b') if b is not None else None, eps=float(eps))
        if name in ('relu', 'sigmoid', 'tanh'):
            return self.emit(name, getattr(torch, name)(x.value), x=x.id)
        if name == 'leaky_relu':
            return self.emit('leakyRelu', F.leaky_relu(x.value, ins[1]), x=x.id, alpha=float(ins[1]))
        if name in ('add', 'sub', 'mul', 'div'):
            return self.binary(node, name, ins)
        if name == 'adaptive_avg_pool2d':
            size = _pair(ins[1])
            if size != [1, 1]:
                raise ExportError(f'adaptive_avg_pool2d to {size} at {where(node)}: only 1x1 is supported')
            return self.emit('meanHW', F.adaptive_avg_pool2d(x.value, 1), x=x.id)
        if name == 'mean':
            dims = sorted(d % x.value.dim() for d in ins[1])
            if x.value.dim() != 4 or dims != [2, 3] or (len(ins) > 3 and ins[3] is not None):
                raise ExportError(f'mean over dims {ins[1]} at {where(node)}: only the mean over H and W of a 4-d tensor is supported')
            keep = bool(ins[2])
            a = self.emit('meanHW', x.value.mean([2, 3], keepdim=True), x=x.id)
            if keep:
                return a
            return self.emit('flatten', a.value.flatten(1), x=a.id)
        if name in ('max_pool2d', 'avg_pool2d'):
            if name == 'max_pool2d':
                _, kernel, stride, pad, dil, ceil = ins
                if _pair(dil) != [1, 1]:
                    raise ExportError(f'max_pool2d with dilation at {where(node)}')
                val = F.max_pool2d(x.value, kernel, stride, pad, dil, ceil)
            else:
                _, kernel, stride, pad, ceil, count_pad, divisor = ins
                if divisor is not None or (not count_pad and _pair(pad) != [0, 0]):
                    raise ExportError(f'avg_pool2d with divisor_override or count_include_pad=False at {where(node)}')
                val = F.avg_pool2d(x.value, kernel, stride, pad, ceil, count_pad, divisor)
            kernel = _pair(kernel)
            stride = _pair(stride) if stride else kernel
            pad = _pair(pad)
            if ceil:
                h, w = x.value.shape[2:]
                floor_out = [(h + 2 * pad[0] - kernel[0]) // stride[0] + 1, (w + 2 * pad[1] - kernel[1]) // stride[1] + 1]
                if list(val.shape[2:]) != floor_out:
                    raise ExportError(f'{name} with ceil_mode=True at {where(node)}: not supported')
            return self.emit('maxPool' if name == 'max_pool2d' else 'avgPool', val, x=x.id, kernel=kernel, stride=stride, pad=pad)
        if name == 'flatten':
            start, end = ins[1], ins[2]
            nd = x.value.dim()
            if start % nd != 1 or end % nd != nd - 1:
                raise ExportError(f'flatten({start}, {end}) at {where(node)}: only flatten(1, -1) is supported')
            return self.emit('flatten', x.value.flatten(1), x=x.id)
        if name in ('view', 'reshape'):
            shape = ins[1]
            if len(shape) == 2 and (isinstance(shape[0], Dyn) or shape[0] == -1) and (shape[1] == -1 or isinstance(shape[1], int)):
                val = x.value.reshape(x.value.shape[0], -1)
                if shape[1] not in (-1, val.shape[1]):
                    raise ExportError(f'{name}{shape} at {where(node)}')
                return self.emit('flatten', val, x=x.id)
            raise ExportError(f'{name} to {shape} at {where(node)}: only (batch, -1) is supported')
        if name == 'linear' or name == 'addmm' or name == 'matmul':
            if name == 'linear':
                _, w, b = ins
            elif name == 'addmm':  # addmm(bias, x, w.t()): the older form of a linear layer
                b, x, wt = ins[0], ins[1], ins[2]
                if len(ins) > 3 and (ins[3] != 1 or ins[4] != 1):
                    raise ExportError(f'addmm with beta/alpha at {where(node)}')
                w = wt.t()
            else:
                if not isinstance(ins[1], torch.Tensor) or ins[1].dim() != 2:
                    raise ExportError(f'{k} at {where(node)}: only a 2-d activation times a constant 2-d weight is supported')
                w, b = ins[1].t(), None
            if not isinstance(x, Exporter.Act) or x.value.dim() != 2 or not isinstance(w, torch.Tensor):
                raise ExportError(f'{k} at {where(node)}: only a 2-d activation times a constant weight is supported')
            val = F.linear(x.value, w, b)
            return self.emit('linear', val, x=x.id, w=self.weight(w, 'linear', 'fc'),
                             b=self.weight(b, 'plain', 'fc_bias') if b is not None else None)
        raise ExportError(f'unsupported op {k} at {where(node)}')

    def binary(self, node, name, ins):
        a, b = ins[0], ins[1]
        alpha = ins[2] if name in ('add', 'sub') and len(ins) > 2 else 1
        if alpha != 1:
            raise ExportError(f'{name} with alpha={alpha} at {where(node)}: not supported')
        val = getattr(torch, name)(a.value if isinstance(a, Exporter.Act) else a, b.value if isinstance(b, Exporter.Act) else b)

        def operand(v, other):
            if isinstance(v, Exporter.Act):
                return {'act': v.id}
            if isinstance(v, (int, float)):
                return {'scalar': float(v)}
            if isinstance(v, torch.Tensor):
                ref = other.value
                if v.numel() == 1:
                    return {'scalar': float(v.item())}
                layout = 'nhwc' if ref.dim() == 4 else 'plain'
                return {'const': self.weight(v, layout, 'const')}
            raise ExportError(f'{name} with an operand of type {type(v).__name__} at {where(node)}')

        act = a if isinstance(a, Exporter.Act) else b
        oa, ob = operand(a, act), operand(b, act)
        # x - 0, x + 0, x * 1, x / 1 (an identity normalization inside the module) are exact
        # no-ops in IEEE arithmetic: skipped.
        identity = {'add': 0.0, 'sub': 0.0, 'mul': 1.0, 'div': 1.0}[name]
        if 'act' in oa and ob.get('scalar') == identity:
            return a
        if name in ('add', 'mul') and 'act' in ob and oa.get('scalar') == identity:
            return b
        return self.emit(name, val, a=oa, b=ob)


class Dyn(int):
    """A batch dimension read from a tensor's size: the op list keeps it symbolic (-1)."""


_MISSING = object()
_INT_OPS = {
    'aten::gt': lambda a, b: a > b, 'aten::lt': lambda a, b: a < b, 'aten::ge': lambda a, b: a >= b,
    'aten::le': lambda a, b: a <= b, 'aten::eq': lambda a, b: a == b, 'aten::ne': lambda a, b: a != b,
    'aten::mul': lambda a, b: a * b, 'aten::floordiv': lambda a, b: a // b, 'aten::sub': lambda a, b: a - b,
    'aten::add': lambda a, b: a + b, 'aten::div': lambda a, b: a / b,
}


def _pair(v):
    if isinstance(v, int):
        return [v, v]
    v = list(v)
    return v * 2 if len(v) == 1 else v


def export(model_path, shape, out_path, atol=1e-4):
    torch.manual_seed(0)
    try:
        m = torch.jit.load(model_path, map_location='cpu').eval()
    except Exception as e:  # noqa: BLE001
        raise ExportError(f'{model_path}: not a TorchScript file this torch can load ({e})') from e
    for p in m.parameters():
        p.requires_grad_(False)
    try:
        frozen = torch.jit.freeze(m)
    except Exception as e:  # noqa: BLE001
        raise ExportError(f'{model_path}: torch.jit.freeze failed ({str(e).splitlines()[0] if str(e) else e!r})') from e
    graph = frozen.graph
    x = torch.rand(2, *shape)
    with torch.no_grad():
        expected = m(x)
    if not isinstance(expected, torch.Tensor) or expected.dim() != 2:
        raise ExportError(f'{model_path}: forward() must return logits [n, classes]')
    ex = Exporter()
    inputs = list(graph.inputs())
    if len(inputs) != 2:
        raise ExportError(f'{model_path}: forward() must take one tensor (it takes {len(inputs) - 1} arguments)')
    env = {inputs[0].debugName(): None, inputs[1].debugName(): Exporter.Act('x', x)}
    with torch.no_grad():
        outs = ex.run_block(graph, env)
    if len(outs) != 1 or not isinstance(outs[0], Exporter.Act):
        raise ExportError(f'{model_path}: forward() must return one tensor computed from the input')
    out = outs[0]
    diff = (out.value - expected).abs().max().item()
    if diff > atol:
        raise ExportError(f'internal: the exported op list gives logits {diff:.2e} away from the module (tolerance {atol})')
    card_path = model_path[:-3] + '.json' if model_path.endswith('.pt') else None
    card = json.load(open(card_path)) if card_path and os.path.exists(card_path) else None
    bin_path = out_path[:-5] + '.bin' if out_path.endswith('.json') else out_path + '.bin'
    manifest = {
        'format': 'robust-synth-tfjs/1',
        'source': os.path.abspath(model_path),
        'sourceSha256': sha256(model_path),
        'architecture': (card or {}).get('architecture'),
        'normalization': (card or {}).get('normalization'),
        'inputShape': list(shape),
        'numClasses': int(expected.shape[1]),
        'weights': os.path.basename(bin_path),
        'tensors': ex.tensors,
        'ops': ex.ops,
        'output': out.id,
        'opCounts': {},
        # An example batch (NCHW, like the library's images) and the module's logits for it.
        'check': {'x': x.flatten().tolist(), 'batch': 2, 'logits': expected.flatten().tolist(), 'exportDiff': diff},
    }
    for o in ex.ops:
        manifest['opCounts'][o['op']] = manifest['opCounts'].get(o['op'], 0) + 1
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(bin_path, 'wb') as f:
        for chunk in ex.blob:
            f.write(chunk)
    with open(out_path, 'w') as f:
        json.dump(manifest, f)
    return manifest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--model', required=True)
    ap.add_argument('--shape', default='1,28,28', help='per-sample input shape c,h,w')
    ap.add_argument('--out', required=True, help='the .json to write (weights go to the same name with .bin)')
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    try:
        man = export(args.model, [int(s) for s in args.shape.split(',')], args.out)
    except ExportError as e:
        sys.stderr.write(f'export_tfjs_weights: cannot export {args.model} for TF.js: {e}\n')
        return 2
    json.dump({'out': args.out, 'ops': len(man['ops']), 'opCounts': man['opCounts'], 'tensors': len(man['tensors']),
               'parameters': sum(t['length'] for t in man['tensors']), 'exportDiff': man['check']['exportDiff']}, sys.stdout)
    sys.stdout.write('\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
