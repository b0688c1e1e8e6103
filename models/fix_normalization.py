#!/usr/bin/python3
"""Sets an exported Fashion-MNIST module's built-in normalization to the identity (see the note at
the top of train_fashion.py) and refreshes its model card's checksum. Used once on the files
trained before that fix; train_fashion.py now exports them this way directly.

    /usr/bin/python3 models/fix_normalization.py models/fashion-standard.pt ...
"""
import json
import sys

import torch

sys.path.insert(0, __file__.rsplit('/', 1)[0])
from train_fashion import sha256  # noqa: E402

for path in sys.argv[1:]:
    m = torch.jit.load(path)
    with torch.no_grad():
        m.mean.fill_(0.0)
        m.std.fill_(1.0)
    m.save(path)
    card_path = path[:-3] + '.json'
    card = json.load(open(card_path))
    card['normalization'] = {'mean': [0.0], 'std': [1.0], 'inside': True}
    card['sha256'] = sha256(path)
    with open(card_path, 'w') as f:
        json.dump(card, f, indent=2)
        f.write('\n')
    print('fixed', path)
