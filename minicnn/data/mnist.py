"""MNIST (and Fashion-MNIST, same format) from IDX files on disk, plain or gzipped.

An IDX file is: two zero bytes, a type code (0x08 uint8, 0x09 int8, 0x0B int16,
0x0C int32, 0x0D float32, 0x0E float64), the number of dimensions n, then n
big-endian uint32 sizes, then the values in row-major order, big-endian.
"""
import gzip
import os
import struct

import numpy as np

from .dataset import ImageDataset

_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _open(path):
    return gzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")


def read_idx(path):
    """The array stored in an IDX file (``.gz`` is decompressed on the fly)."""
    with _open(path) as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: not an IDX file (header {data[:4].hex()})")
    ndim = data[3]
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    count = int(np.prod(shape))
    body = data[4 + 4 * ndim:]
    if len(body) != count * dtype.itemsize:
        raise ValueError(f"{path}: IDX header says shape {shape} ({count * dtype.itemsize} bytes) but the file "
                         f"holds {len(body)} bytes of data")
    return np.frombuffer(body, dtype).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Write ``array`` as an IDX file (gzipped when ``path`` ends in ``.gz``)."""
    array = np.asarray(array)
    code = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_TYPES.items()}.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"write_idx: dtype {array.dtype} has no IDX type code")
    head = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = array.astype(np.dtype(_IDX_TYPES[code])).tobytes()
    with (gzip.open(path, "wb") if str(path).endswith(".gz") else open(path, "wb")) as f:
        f.write(head + body)


def _find(root, name):
    for d in (root, os.path.join(root, "MNIST", "raw"), os.path.join(root, "raw")):
        for candidate in (name, name + ".gz"):
            p = os.path.join(d, candidate)
            if os.path.exists(p):
                return p
    raise FileNotFoundError(f"MNIST: no {name}[.gz] in {root} (nor in its MNIST/raw or raw folders); download "
                            "the four IDX files from the MNIST site and put them there")


class MNIST(ImageDataset):
    """Images (1, 28, 28) in [0, 1] and labels 0-9 from ``root`` (torchvision's folder layout works too)."""

    def __init__(self, root, train=True, transform=None):
        images = read_idx(_find(root, _FILES[train][0]))
        labels = read_idx(_find(root, _FILES[train][1]))
        if images.ndim != 3 or labels.shape != images.shape[:1]:
            raise ValueError(f"MNIST: images {images.shape} and labels {labels.shape} do not match")
        super().__init__(images[:, None], labels.astype(np.int64), transform, [str(d) for d in range(10)])
