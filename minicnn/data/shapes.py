"""Procedurally generated shapes: datasets that need no download.

``ShapesClassification``: one shape per image (circle, square, triangle, cross,
diamond) of random colour, size and position on a random background colour,
with Gaussian noise. ``ShapesSegmentation``: several shapes per image, and a mask
with the class of every pixel (0 background, 1 circle, 2 square, 3 triangle);
shapes do not overlap. Both are a function of ``seed`` alone.

A shape is the set of pixels (y, x) whose offset (dy, dx) from the centre,
relative to the radius r, satisfies::

    circle    dx^2 + dy^2 <= r^2
    square    max(|dx|, |dy|) <= 0.8 r          (about the circle's area)
    triangle  -r <= dy <= r/2 and |dx| <= (dy + r) / sqrt(3)   (equilateral, apex up)
    cross     (|dx| <= r/3 and |dy| <= r) or (|dy| <= r/3 and |dx| <= r)
    diamond   |dx| + |dy| <= r
"""
import numpy as np

from .dataset import ImageDataset

SHAPES = ("circle", "square", "triangle", "cross", "diamond")


def shape_mask(kind, dy, dx, r):
    """Boolean mask of shape ``kind`` for pixel offsets dy, dx (broadcastable arrays) and radius r."""
    if kind == "circle":
        return dx * dx + dy * dy <= r * r
    if kind == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) <= 0.8 * r
    if kind == "triangle":
        return (dy >= -r) & (dy <= r / 2) & (np.abs(dx) <= (dy + r) / np.sqrt(3))
    if kind == "cross":
        a, b = np.abs(dx), np.abs(dy)
        return ((a <= r / 3) & (b <= r)) | ((b <= r / 3) & (a <= r))
    if kind == "diamond":
        return np.abs(dx) + np.abs(dy) <= r
    raise ValueError(f"unknown shape {kind!r}; expected one of {SHAPES}")


def _colours(rng, n, bg=None):
    """(background, foreground): n RGB colours each in [0, 1], foregrounds at least 0.35 from their
    background in mean brightness or 0.5 in some channel, so every shape is visible. ``bg`` (n, 3)
    fixes the backgrounds."""
    bg = rng.random((n, 3)) if bg is None else bg
    fg = rng.random((n, 3))
    while True:
        bad = (np.abs(bg.mean(1) - fg.mean(1)) < 0.35) & (np.abs(bg - fg).max(1) < 0.5)
        if not bad.any():
            return bg, fg
        fg[bad] = rng.random((int(bad.sum()), 3))


def _to_uint8(images):
    return np.clip(np.round(images * 255), 0, 255).astype(np.uint8)


class ShapesClassification(ImageDataset):
    """``num_samples`` RGB images (3, size, size), label = index into ``classes``."""

    def __init__(self, num_samples=5000, image_size=32, seed=0, noise=0.05, classes=SHAPES, transform=None):
        rng = np.random.default_rng(seed)
        s = image_size
        labels = rng.integers(0, len(classes), num_samples)
        radius = rng.uniform(0.18, 0.4, num_samples) * s
        cy = rng.uniform(radius, s - 1 - radius)
        cx = rng.uniform(radius, s - 1 - radius)
        bg, fg = _colours(rng, num_samples)
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
        images = np.empty((num_samples, 3, s, s), np.float64)
        for i in range(num_samples):
            m = shape_mask(classes[labels[i]], yy - cy[i], xx - cx[i], radius[i])
            images[i] = np.where(m, fg[i][:, None, None], bg[i][:, None, None])
        images += rng.normal(0, noise, images.shape)
        super().__init__(_to_uint8(images), labels.astype(np.int64), transform, classes)


class ShapesSegmentation(ImageDataset):
    """``num_samples`` RGB images (3, size, size) with masks (size, size): 0 background, k = classes[k - 1]."""

    def __init__(self, num_samples=2000, image_size=64, seed=0, noise=0.05, max_shapes=4,
                 classes=("circle", "square", "triangle"), transform=None):
        rng = np.random.default_rng(seed)
        s = image_size
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
        images = np.empty((num_samples, 3, s, s), np.float64)
        masks = np.zeros((num_samples, s, s), np.uint8)
        for i in range(num_samples):
            k = int(rng.integers(1, max_shapes + 1))
            bg, fg = _colours(rng, k, np.repeat(rng.random((1, 3)), k, 0))
            img = np.broadcast_to(bg[0][:, None, None], (3, s, s)).copy()
            placed = []  # (cy, cx, r): shapes do not touch, so each one's class is unambiguous
            for j in range(k):
                for _ in range(20):
                    r = rng.uniform(0.1, 0.22) * s
                    cy, cx = rng.uniform(r, s - 1 - r, 2)
                    if all(np.hypot(cy - y, cx - x) > r + q + 2 for y, x, q in placed):
                        break
                else:
                    continue
                placed.append((cy, cx, r))
                c = int(rng.integers(0, len(classes)))
                m = shape_mask(classes[c], yy - cy, xx - cx, r)
                img[:, m] = fg[j][:, None]
                masks[i][m] = c + 1
            images[i] = img
        images += rng.normal(0, noise, images.shape)
        super().__init__(_to_uint8(images), masks, transform, ("background",) + tuple(classes))
