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
