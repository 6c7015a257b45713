"""Scratch memory for the convolutions' column matrices and Winograd transforms.

A column matrix is kh*kw times bigger than the image it comes from, so the tiled paths
build it in tiles of at most ``get_workspace_limit()`` bytes (the threads of a batch split
share the limit), and on the host they reuse one buffer per thread across calls: glibc
hands big blocks back to the OS when they are freed, and a fresh buffer would page-fault in
again on every call. That is safe because scratch never outlives the call that fills it.
On the GPU CuPy's memory pool already recycles blocks, so there is no buffer to keep.
"""
import math
import threading

import numpy as np

from . import tuning
from .cpu import threads

_buffers = {}  # thread id -> that thread's reusable host buffer


def set_workspace_limit(nbytes):
    """Cap the scratch of one convolution at ``nbytes`` in all; returns the previous cap."""
    if int(nbytes) < 1:
        raise ValueError(f"set_workspace_limit: the limit must be a positive number of bytes, got {nbytes}")
    previous, tuning.WORKSPACE_LIMIT = tuning.WORKSPACE_LIMIT, int(nbytes)
    clear_workspace()
    return previous


def get_workspace_limit():
    return tuning.WORKSPACE_LIMIT


def clear_workspace():
    """Free the host buffers (they are otherwise kept for the next convolution)."""
    _buffers.clear()


def thread_limit():
    """This thread's part of the limit: all of it, or its share in a batch split."""
    return max(1, tuning.WORKSPACE_LIMIT // threads.share())


def thread_buffer():
    """This thread's host buffer (a flat uint8 array), or None before its first tiled convolution."""
    return _buffers.get(threading.get_ident())


def host_buffer(shape, dtype):
    """An uninitialised array of ``shape`` in this thread's reusable host buffer."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    me = threading.get_ident()
    buffer = _buffers.get(me)
    if buffer is None or buffer.nbytes < nbytes:
        _buffers.pop(me, None)  # let the smaller buffer go before the bigger one is allocated
        buffer = _buffers[me] = np.empty(nbytes, np.uint8)
    return buffer[:nbytes].view(dtype).reshape(shape)
