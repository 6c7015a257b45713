"""``minicnn.data``: datasets, the DataLoader, transforms, and readers for common formats.

    Dataset, TensorDataset, ImageDataset, Subset, random_split     in-memory datasets
    DataLoader, default_collate                                    batching, shuffling, prefetching
    DistributedSampler                                             each process's share (data-parallel)
    transforms                                                     RandomCrop, RandomHorizontalFlip, Normalize, ...
    ShapesClassification, ShapesSegmentation                       generated, no download
    Digits                                                         scikit-learn's 8x8 digits
    MNIST, CIFAR10, SegmentationFolder                             files on disk
    read_png, write_png, read_idx, write_idx                       the file formats
"""
from . import transforms  # noqa: F401
from .cifar import CIFAR10, read_cifar_batch  # noqa: F401
from .dataloader import DataLoader, default_collate  # noqa: F401
from .dataset import Dataset, ImageDataset, Subset, TensorDataset, random_split  # noqa: F401
from .digits import Digits  # noqa: F401
from .folder import SegmentationFolder  # noqa: F401
from .mnist import MNIST, read_idx, write_idx  # noqa: F401
from .png import read_png, write_png  # noqa: F401
from .sampler import DistributedSampler  # noqa: F401
from .shapes import ShapesClassification, ShapesSegmentation  # noqa: F401
