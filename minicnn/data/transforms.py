"""Data augmentation and preprocessing on NumPy arrays: images (C, H, W) float32, masks (H, W).

Every transform is called as ``t(image)`` -> image, or ``t(image, mask)`` ->
(image, mask); spatial transforms (crop, flip) move the mask with the image, so a
segmentation pair stays aligned, while ``Normalize`` leaves the mask alone.

Random transforms draw from ``rng()``: inside a ``DataLoader`` that is a generator
seeded per batch from the loader's epoch seed (so augmentation does not depend on
which thread loads the batch, and a resumed run repeats it exactly); elsewhere
it is minicnn's global generator (``mc.manual_seed``).
"""
import contextlib
import threading

import numpy as np

from .. import random

_local = threading.local()


def rng():
    """The generator random transforms draw from (see the module docstring)."""
    g = getattr(_local, "rng", None)
    return g if g is not None else random.generator()


@contextlib.contextmanager
def using_rng(generator):
    """Within the block, random transforms in this thread draw from ``generator``."""
    prev = getattr(_local, "rng", None)
    _local.rng = generator
    try:
        yield
    finally:
        _local.rng = prev


def _pair(v, name):
    v = (v, v) if np.isscalar(v) else tuple(v)
    if len(v) != 2:
        raise ValueError(f"{name}: expected an int or a pair (h, w), got {v!r}")
    return int(v[0]), int(v[1])


def _check(image, mask, name):
    if image.ndim != 3:
        raise ValueError(f"{name}: expected an image (C, H, W), got shape {image.shape}")
    if mask is not None and mask.shape != image.shape[1:]:
        raise ValueError(f"{name}: mask of shape {mask.shape} does not match image of shape {image.shape}")


def _out(image, mask):
    return image if mask is None else (image, mask)


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image, mask=None):
        for t in self.transforms:
            out = t(image, mask)
            image, mask = (out, None) if mask is None else out
        return _out(image, mask)

    def __repr__(self):
        return "Compose(" + ", ".join(map(repr, self.transforms)) + ")"


class RandomCrop:
    """Pad by ``padding`` on every side (``fill`` for the image, ``mask_fill`` for the mask),
    then cut a ``size`` window at a uniformly random position (the CIFAR augmentation)."""

    def __init__(self, size, padding=0, fill=0.0, mask_fill=0, padding_mode="constant"):
        if padding_mode not in ("constant", "reflect", "edge"):
            raise ValueError(f"RandomCrop: padding_mode must be 'constant', 'reflect' or 'edge', got {padding_mode!r}")
        self.size, self.padding = _pair(size, "RandomCrop size"), int(padding)
        self.fill, self.mask_fill, self.padding_mode = fill, mask_fill, padding_mode

    def __call__(self, image, mask=None):
        _check(image, mask, "RandomCrop")
        p = self.padding
        if p:
            kw = {"constant_values": self.fill} if self.padding_mode == "constant" else {}
            image = np.pad(image, ((0, 0), (p, p), (p, p)), mode=self.padding_mode, **kw)
            if mask is not None:
                kw = {"constant_values": self.mask_fill} if self.padding_mode == "constant" else {}
                mask = np.pad(mask, ((p, p), (p, p)), mode=self.padding_mode, **kw)
        (th, tw), (h, w) = self.size, image.shape[1:]
        if th > h or tw > w:
            raise ValueError(f"RandomCrop: crop size {(th, tw)} is larger than the padded image {(h, w)}")
        g = rng()
        i, j = int(g.integers(0, h - th + 1)), int(g.integers(0, w - tw + 1))
        image = np.ascontiguousarray(image[:, i:i + th, j:j + tw])
        return _out(image, None if mask is None else np.ascontiguousarray(mask[i:i + th, j:j + tw]))

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror left-right with probability ``p``."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, image, mask=None):
        _check(image, mask, "RandomHorizontalFlip")
        if rng().random() < self.p:
            image = np.ascontiguousarray(image[:, :, ::-1])
            mask = None if mask is None else np.ascontiguousarray(mask[:, ::-1])
        return _out(image, mask)

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


class RandomVerticalFlip:
    """Mirror top-bottom with probability ``p``."""

    def __init__(self, p=0.5):
        self.p = p

    def __call__(self, image, mask=None):
        _check(image, mask, "RandomVerticalFlip")
        if rng().random() < self.p:
            image = np.ascontiguousarray(image[:, ::-1])
            mask = None if mask is None else np.ascontiguousarray(mask[::-1])
        return _out(image, mask)

    def __repr__(self):
        return f"RandomVerticalFlip(p={self.p})"


class Normalize:
    """Per channel: (image[c] - mean[c]) / std[c]. The mask is left unchanged."""

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(std, np.float32).reshape(-1, 1, 1)
        if (self.std <= 0).any():
            raise ValueError(f"Normalize: std must be positive, got {std!r}")

    def __call__(self, image, mask=None):
        _check(image, mask, "Normalize")
        if self.mean.shape[0] not in (1, image.shape[0]):
            raise ValueError(f"Normalize: {self.mean.shape[0]} channel statistics for an image with "
                             f"{image.shape[0]} channels")
        image = ((image - self.mean) / self.std).astype(image.dtype, copy=False)
        return _out(image, mask)

    def __repr__(self):
        return f"Normalize(mean={self.mean.ravel().tolist()}, std={self.std.ravel().tolist()})"
