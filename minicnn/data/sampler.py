"""``DistributedSampler``: each process of a data-parallel job reads its own share of a dataset.

As PyTorch's: the (shuffled) indices are padded by repeating the first ones until they divide
evenly (or cut with ``drop_last``), and process r takes every ``num_replicas``-th index from r
on, so the shares are disjoint, equally long and together cover the dataset. The shuffle is a
permutation drawn from NumPy's generator seeded with ``seed + epoch``: ``set_epoch(epoch)``
before each epoch gives every process the same new order. (PyTorch draws its permutation from
its own generator, so the order itself differs from PyTorch's; the partition rule is the same.)
"""
import math

import numpy as np


class DistributedSampler:
    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0, drop_last=False):
        from .. import distributed

        num_replicas = distributed.get_world_size() if num_replicas is None else num_replicas
        rank = distributed.get_rank() if rank is None else rank
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: rank {rank} is not in [0, {num_replicas}) "
                             f"(num_replicas={num_replicas})")
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.shuffle, self.seed, self.drop_last, self.epoch = shuffle, seed, drop_last, 0
        n = len(dataset)
        self.num_samples = n // num_replicas if drop_last else math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self):
        n = len(self.dataset)
        indices = np.random.default_rng(self.seed + self.epoch).permutation(n) if self.shuffle else np.arange(n)
        if self.drop_last:
            indices = indices[:self.total_size]
        elif self.total_size > n:
            indices = np.concatenate([indices, np.resize(indices, self.total_size - n)])
        return iter(indices[self.rank:self.total_size:self.num_replicas].tolist())

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Shuffle differently (and identically on every process) in this epoch."""
        self.epoch = int(epoch)
