"""CIFAR-10 from the "python version" batches on disk (``cifar-10-batches-py``).

Each batch file is a pickled dict with ``data`` (10000, 3072) uint8 (1024 red,
then 1024 green, then 1024 blue values of a 32x32 image, row-major) and
``labels`` (10000 ints); the training set is ``data_batch_1`` .. ``data_batch_5``
and the test set ``test_batch``.
"""
import os
import pickle

import numpy as np

from .dataset import ImageDataset

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def read_cifar_batch(path):
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) from one pickled batch file."""
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}
    if "data" not in d or "labels" not in d:
        raise ValueError(f"{path}: not a CIFAR-10 batch (keys {sorted(d)})")
    data = np.asarray(d["data"], np.uint8)
    return data.reshape(-1, 3, 32, 32), np.asarray(d["labels"], np.int64)


class CIFAR10(ImageDataset):
    """Images (3, 32, 32) in [0, 1] and labels 0-9 from ``root`` or ``root/cifar-10-batches-py``."""

    def __init__(self, root, train=True, transform=None):
        sub = os.path.join(root, "cifar-10-batches-py")
        root = sub if os.path.isdir(sub) else root
        names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
        missing = [n for n in names if not os.path.exists(os.path.join(root, n))]
        if missing:
            raise FileNotFoundError(f"CIFAR10: {', '.join(missing)} not found in {root}; download and unpack "
                                    "cifar-10-python.tar.gz there")
        parts = [read_cifar_batch(os.path.join(root, n)) for n in names]
        super().__init__(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                         transform, CLASSES)
