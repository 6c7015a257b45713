"""Datasets: anything with ``__len__`` and ``__getitem__(i) -> sample``.

A sample is usually ``(image, label)`` with the image a float32 (C, H, W) array,
or ``(image, mask)`` with the mask an int64 (H, W) array of class indices.
"""
import numpy as np

from .. import backend, random
from ..tensor import Tensor


class Dataset:
    """Base class: subclasses define ``__len__`` and ``__getitem__``."""

    def __len__(self):
        raise NotImplementedError

    def __getitem__(self, index):
        raise NotImplementedError


class TensorDataset(Dataset):
    """Samples are the i-th rows of the given arrays (or Tensors), e.g. ``TensorDataset(x, y)``."""

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset needs at least one array")
        self.arrays = [backend.to_numpy(a.array if isinstance(a, Tensor) else np.asarray(a)) for a in arrays]
        n = len(self.arrays[0])
        if any(len(a) != n for a in self.arrays):
            raise ValueError("TensorDataset: arrays have different first dimensions: "
                             + ", ".join(str(a.shape) for a in self.arrays))

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, i):
        return tuple(a[i] for a in self.arrays)


class ImageDataset(Dataset):
    """Images held in memory with their labels or masks.

    images: (N, C, H, W) uint8 (scaled to [0, 1]) or floating point (used as is).
    targets: (N,) class labels, or (N, H, W) masks of class indices.
    ``transform(image)`` (labels) or ``transform(image, mask)`` (masks) runs on each sample.
    """

    def __init__(self, images, targets, transform=None, classes=None):
        images, targets = np.asarray(images), np.asarray(targets)
        if images.ndim != 4 or len(images) != len(targets):
            raise ValueError(f"{type(self).__name__}: expected images (N, C, H, W) and N targets, got "
                             f"{images.shape} and {targets.shape}")
        self.images, self.targets, self.transform = images, targets, transform
        self.classes = list(classes) if classes is not None else None

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = self.images[i]
        x = x.astype(np.float32) / 255 if x.dtype == np.uint8 else x.astype(np.float32)
        y = self.targets[i]
        if y.ndim == 0:
            y = int(y)
            return (self.transform(x) if self.transform else x), y
        y = y.astype(np.int64)
        return self.transform(x, y) if self.transform else (x, y)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, [int(i) for i in indices]

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[self.indices[i]]


def random_split(dataset, lengths, generator=None):
    """Split into non-overlapping ``Subset``s of the given lengths (or fractions summing to 1)."""
    n = len(dataset)
    if all(0 <= f <= 1 for f in lengths) and abs(sum(lengths) - 1) < 1e-9 and sum(lengths) != n:
        counts = [int(np.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n:
        raise ValueError(f"random_split: lengths {list(lengths)} do not add up to the dataset size {n}")
    perm = random.numpy_generator(generator).permutation(n)
    bounds = np.cumsum([0] + list(lengths))
    return [Subset(dataset, perm[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
