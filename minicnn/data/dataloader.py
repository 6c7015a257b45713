"""``DataLoader``: batches from a dataset, shuffled reproducibly, optionally loaded ahead in a thread.

Each epoch (each ``iter(loader)``) draws, from the loader's generator, the order
of the samples and one 63-bit epoch seed. Batch b is then loaded under a
generator seeded with (epoch seed, b), which random transforms use (see
``transforms.rng``). So the batches of an epoch are a function of the generator
state at its start alone: the same with or without the prefetch thread, and
the same after saving ``state_dict()`` and restoring it in a new process.

``generator``: None (draw from minicnn's global generator, which
``mc.manual_seed`` and ``minicnn.random.get_rng_state`` cover), an int seed, or a
``numpy.random.Generator`` that the loader owns.

``prefetch=k`` (k > 0) loads up to k batches ahead in one background thread
through a bounded queue; NumPy releases the GIL in most array work, so loading
overlaps training. Stopping an epoch early (``break``) stops the thread.
"""
import math
import queue
import threading

import numpy as np

from .. import backend, random
from ..tensor import Tensor
from .transforms import using_rng


def default_collate(samples):
    """Stack a list of samples into a batch: arrays/numbers -> Tensors (N, ...), tuples and dicts
    collated field by field. Integer labels become int64, Python floats float32."""
    first = samples[0]
    if isinstance(first, Tensor):
        return Tensor._make(backend.array_module(first.array).stack([s.array for s in samples]))
    if isinstance(first, (np.ndarray, np.generic)):
        shapes = {np.shape(s) for s in samples}
        if len(shapes) > 1:
            raise ValueError(f"default_collate: samples in one batch have different shapes {sorted(shapes)}; "
                             "resize or crop them to one size (e.g. transforms.RandomCrop), or use batch_size=1")
        return Tensor._make(np.stack(samples))
    if isinstance(first, (bool, int)):
        return Tensor._make(np.asarray(samples, dtype=np.int64))
    if isinstance(first, float):
        return Tensor._make(np.asarray(samples, dtype=np.float32))
    if isinstance(first, str):
        return list(samples)
    if isinstance(first, dict):
        return {k: default_collate([s[k] for s in samples]) for k in first}
    if isinstance(first, (tuple, list)):
        if any(len(s) != len(first) for s in samples):
            raise ValueError("default_collate: samples in a batch have different numbers of fields")
        return tuple(default_collate(list(field)) for field in zip(*samples))
    raise TypeError(f"default_collate: don't know how to batch samples of type {type(first).__name__}")


class DataLoader:
    def __init__(self, dataset, batch_size=1, shuffle=False, collate_fn=None, drop_last=False,
                 generator=None, prefetch=0, sampler=None, num_workers=0, pin_memory=False, **unused):
        # num_workers and pin_memory are PyTorch's; here one prefetch thread is the worker (prefetch=k),
        # and host memory needs no pinning: both are accepted so that PyTorch scripts run unchanged
        if int(num_workers) != num_workers or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative integer, got {num_workers!r}")
        unknown = set(unused) - {"persistent_workers", "prefetch_factor", "worker_init_fn", "timeout"}
        if unknown:
            raise TypeError(f"DataLoader: unexpected argument(s) {', '.join(sorted(unknown))}")
        if num_workers and not prefetch:
            prefetch = 2
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive integer, got {batch_size!r}")
        if sampler is not None and shuffle:
            raise ValueError("DataLoader: sampler and shuffle=True exclude each other (the sampler orders)")
        self.sampler = sampler
        if prefetch < 0:
            raise ValueError(f"DataLoader: prefetch must be >= 0, got {prefetch!r}")
        self.dataset, self.batch_size, self.shuffle = dataset, int(batch_size), shuffle
        self.collate_fn = collate_fn or default_collate
        self.drop_last, self.prefetch = drop_last, int(prefetch)
        self.generator = None if generator is None else random.numpy_generator(generator)

    def __len__(self):
        n = len(self.dataset) if self.sampler is None else len(self.sampler)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _epoch_plan(self):
        """(list of index arrays, epoch seed), drawn from the generator in the calling thread."""
        g = self.generator if self.generator is not None else random.generator()
        if self.sampler is not None:  # e.g. this process's share of the dataset
            order = np.fromiter(iter(self.sampler), dtype=np.int64)
        else:
            order = g.permutation(len(self.dataset)) if self.shuffle else np.arange(len(self.dataset))
        n = len(order)
        seed = int(g.integers(0, 2 ** 63 - 1))
        bs, stop = self.batch_size, len(self) * self.batch_size
        return [order[i:min(i + bs, n)] for i in range(0, min(stop, n), bs)], seed

    def load_batch(self, indices, seed, b):
        """Batch ``b`` of an epoch: its samples, transformed under the batch's own generator, collated."""
        with using_rng(np.random.default_rng([seed, b])):
            return self.collate_fn([self.dataset[int(i)] for i in indices])

    def __iter__(self):
        batches, seed = self._epoch_plan()
        if self.prefetch == 0:
            return (self.load_batch(idx, seed, b) for b, idx in enumerate(batches))
        return _PrefetchIterator(self, batches, seed)

    def state_dict(self):
        """The state of a generator the loader owns (what the next epoch's order depends on)."""
        return {} if self.generator is None else {"generator": self.generator.bit_generator.state}

    def load_state_dict(self, state):
        if "generator" in state:
            if self.generator is None:
                raise ValueError("DataLoader.load_state_dict: the saved loader had its own generator, this one "
                                 "has none (pass generator=... when building it)")
            self.generator.bit_generator.state = state["generator"]


class _Raised:
    def __init__(self, exc):
        self.exc = exc


_END = object()


def _put(q, stop, item):
    """Put into the bounded queue, giving up when ``stop`` is set (the consumer went away)."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.05)
            return True
        except queue.Full:
            pass
    return False


def _produce(q, stop, loader, batches, seed):
    """The background thread. It holds no reference to the iterator, so dropping the iterator
    (``break`` out of a for loop) runs its ``__del__``, which stops this thread."""
    try:
        for b, idx in enumerate(batches):
            if stop.is_set() or not _put(q, stop, loader.load_batch(idx, seed, b)):
                return
        _put(q, stop, _END)
    except BaseException as e:  # handed to the consumer, which re-raises it
        _put(q, stop, _Raised(e))


class _PrefetchIterator:
    """Batches produced by a background thread into a queue of at most ``prefetch`` batches."""

    def __init__(self, loader, batches, seed):
        self._queue = queue.Queue(maxsize=loader.prefetch)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=_produce, args=(self._queue, self._stop, loader, batches, seed),
                                        daemon=True, name="minicnn-prefetch")
        self._thread.start()

    def __iter__(self):
        return self

    def __next__(self):
        if self._stop.is_set():
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self.close()
            raise StopIteration
        if isinstance(item, _Raised):
            self.close()
            raise item.exc
        return item

    def close(self):
        """Stop the thread and wait for it (called at the end, on errors, and when dropped early)."""
        self._stop.set()
        self._thread.join()

    def __del__(self):
        if getattr(self, "_thread", None) is not None:
            self.close()
