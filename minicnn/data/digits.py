"""scikit-learn's bundled handwritten digits (1797 images, 8x8, 10 classes): no download needed."""
import numpy as np

from .dataset import ImageDataset


def _load_digits():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the digits dataset comes with scikit-learn, which is not installed: "
                          "pip install scikit-learn (or minicnn[digits])") from None
    return load_digits()


class Digits(ImageDataset):
    """Images (1, 8, 8) in [0, 1] (the 0-16 counts divided by 16), labels 0-9.

    The 1797 samples are split once, by a permutation drawn from ``split_seed``, into
    a training part (all but ``test_size``) and a test part, so train/test never overlap.
    """

    def __init__(self, train=True, test_size=360, split_seed=0, transform=None):
        d = _load_digits()
        images = (d.images / 16.0).astype(np.float32)[:, None]
        perm = np.random.default_rng(split_seed).permutation(len(images))
        idx = perm[test_size:] if train else perm[:test_size]
        super().__init__(images[idx], d.target[idx].astype(np.int64), transform, [str(c) for c in range(10)])
