"""Regenerate the small real ``torch.save`` files that tests/test_serialization.py reads.

Run with a Python that has PyTorch (the tests themselves never import torch):
    /work/torchenv/bin/python tests/data/make_torch_files.py
Every value is a function of arange, so the test can rebuild it with NumPy.
"""
import collections
import os

import torch


def checkpoint():
    base = torch.arange(120, dtype=torch.float32).reshape(4, 5, 6)
    sd = collections.OrderedDict()
    sd["conv.weight"] = torch.nn.Parameter(torch.arange(24, dtype=torch.float32).reshape(2, 3, 2, 2))
    sd["bn.running_mean"] = torch.arange(3, dtype=torch.float64) / 4
    sd["bn.num_batches_tracked"] = torch.tensor(7)
    sd["base"] = base
    sd["transposed"] = base.transpose(0, 2)            # shares base's storage, permuted strides
    sd["sliced"] = base[1:, ::2, 3:]                   # storage offset + step
    sd["expanded"] = torch.arange(3, dtype=torch.int32).reshape(3, 1).expand(3, 4)  # stride 0
    sd["mask"] = torch.tensor([True, False, True])
    sd["half"] = torch.arange(4, dtype=torch.float16) / 2
    sd["bf16"] = torch.arange(4, dtype=torch.bfloat16) * 0.5
    sd["empty"] = torch.zeros(0, 3)
    return {"state_dict": sd, "epoch": 3, "best_acc": 0.75, "milestones": (10, 20), "name": "tiny"}


here = os.path.dirname(os.path.abspath(__file__))
torch.save(checkpoint(), os.path.join(here, "torch_checkpoint.pth"))
torch.save(checkpoint(), os.path.join(here, "torch_checkpoint_legacy.pth"), _use_new_zipfile_serialization=False)
