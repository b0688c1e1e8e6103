"""Small helpers shared by the Python scripts of robust-synth (models/export_resnet50.py,
models/train_fashion.py, test/fixtures/make_checkpoints.py). Standard library only, so that
importing it costs nothing and needs no torch.

The scripts find this file next to themselves: export_resnet50.py and train_fashion.py put their
own directory on sys.path (so they run by absolute path from any working directory, also as
shipped in the npm package under models/), the test fixture puts models/ there.
"""
import hashlib
import json
import os

__all__ = ['sha256', 'write_json', 'one_line']


def sha256(path):
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def write_json(path, obj, indent=2):
    """Writes obj as JSON (with a final newline) atomically: to PATH.partial, then renamed."""
    tmp = path + '.partial'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=indent)
        f.write('\n')
    os.replace(tmp, path)


def one_line(e):
    """An exception (or any text) as one line: whitespace runs collapsed; the type's name if empty."""
    return ' '.join(str(e).split()) or type(e).__name__
