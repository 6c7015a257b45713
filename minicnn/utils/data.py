"""``minicnn.utils.data``, as ``torch.utils.data``: the same objects as ``minicnn.data``."""
from ..data import (DataLoader, Dataset, DistributedSampler, Subset, TensorDataset,  # noqa: F401
                    default_collate, random_split)
