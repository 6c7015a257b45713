"""The engine's one source of randomness, so ``manual_seed`` makes runs repeatable."""
import random as _pyrandom

import numpy as np

from . import backend

_generator = np.random.default_rng()


def manual_seed(seed):
    """Seed every random source minicnn uses: its NumPy generator, Python's
    ``random``, and CuPy's generator when a GPU is present."""
    global _generator
    seed = int(seed)
    _generator = np.random.default_rng(seed)
    _pyrandom.seed(seed)
    if backend.cuda_available():
        backend.cupy_module().random.seed(seed)
    return _generator


def generator():
    """The NumPy ``Generator`` behind initialisers, dropout and data shuffling."""
    return _generator


def get_rng_state():
    return {"numpy": _generator.bit_generator.state, "python": _pyrandom.getstate()}


def set_rng_state(state):
    _generator.bit_generator.state = state["numpy"]
    _pyrandom.setstate(state["python"])


class Generator:
    """A random generator object, as ``torch.Generator``: ``mc.Generator().manual_seed(0)`` seeds
    it and returns it, so it can be handed to ``random_split`` or a ``DataLoader``. It wraps a
    NumPy ``Generator`` (``.numpy``)."""

    def __init__(self, device="cpu"):
        backend.normalize_device(device)
        self.device = str(device)
        self._seed = int(np.random.SeedSequence().entropy % 2**63)
        self.numpy = np.random.default_rng(self._seed)

    def manual_seed(self, seed):
        self._seed = int(seed)
        self.numpy = np.random.default_rng(self._seed)
        return self

    def seed(self):
        """Seed from the operating system's entropy; returns the seed."""
        return self.manual_seed(np.random.SeedSequence().entropy % 2**63)._seed

    def initial_seed(self):
        return self._seed

    def get_state(self):
        return self.numpy.bit_generator.state

    def set_state(self, state):
        self.numpy.bit_generator.state = state
        return self


def numpy_generator(generator):
    """A NumPy ``Generator`` from what a user may pass as ``generator=``: None (minicnn's global
    one), an int seed, a ``Generator`` above, or a NumPy ``Generator``."""
    if generator is None:
        return _generator
    if isinstance(generator, Generator):
        return generator.numpy
    if isinstance(generator, (int, np.integer)):
        return np.random.default_rng(int(generator))
    return generator
