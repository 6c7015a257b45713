"""Run the CUDA kernels on the CPU: the same ``kernels/*.cu`` source, built by g++.

``kernels/host_shim.h`` turns the CUDA keywords into plain C++ and the thread
coordinates (``blockIdx``, ``threadIdx``, ...) into globals. ``build``
compiles each ``.cu`` file into a shared library in a temporary folder;
``HostRunner`` runs a launch by calling the kernel once per (block, thread) of
a small grid, one after another, with NumPy arrays passed through ctypes. A small grid
(default 3 blocks of 4 threads) makes every thread go round its grid-stride
loop several times, as on a GPU with a big input.

    with minicnn.cuda.host.emulate():
        col = minicnn.cuda.im2col(x_numpy, 3, 3, 1, 1, 1, 1, 1, 1, 8, 8)

This is for reading, stepping through (gdb) and testing the kernels on a
machine without a GPU; it is slow.
"""
import atexit
import contextlib
import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile

import numpy as np

from . import launch as _launch
from . import source

_CTYPE = {np.int64: ctypes.c_longlong, np.float32: ctypes.c_float, np.float64: ctypes.c_double}


def compiler():
    """The C++ compiler command ($CXX, else g++), or None when there is none."""
    return shutil.which(os.environ.get("CXX", "g++"))


_libraries = {}  # library path -> ctypes.CDLL, shared by every HostRunner
_build_dir = None


def _library_path(family, flags):
    global _build_dir
    if _build_dir is None:
        _build_dir = tempfile.mkdtemp(prefix="minicnn-host-kernels-")
        atexit.register(shutil.rmtree, _build_dir, True)
    # the name changes with the source and flags, so an edited kernel is never served stale
    digest = hashlib.sha1((source.read_source(family) + repr(flags)).encode()).hexdigest()[:12]
    return os.path.join(_build_dir, f"{family}-{digest}.so")


def build(families=source.FAMILIES, flags=("-O1",)):
    """Compile the ``.cu`` files of ``families`` that are not built yet, in parallel."""
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("minicnn.cuda.host: no C++ compiler found (set CXX or install g++)")
    jobs = []
    for family in families:
        out = _library_path(family, flags)
        if out not in _libraries:
            cmd = [cxx, "-std=c++17", *flags, "-shared", "-fPIC", "-x", "c++",
                   str(source.cu_path(family)), "-o", out]
            jobs.append((family, out, subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    for family, out, proc in jobs:
        log = proc.communicate()[0]
        if proc.returncode != 0:
            raise RuntimeError(f"minicnn.cuda.host: compiling {family}.cu failed:\n{log}")
        _libraries[out] = ctypes.CDLL(out)
    return {family: _libraries[_library_path(family, flags)] for family in families}


class HostRunner:
    """Launches kernels on the CPU with a grid of at most ``blocks`` x ``threads``."""

    def __init__(self, blocks=3, threads=4, flags=("-O1",)):
        self.blocks, self.threads, self.flags = blocks, threads, tuple(flags)

    def launch(self, family, name, n, args):
        """Run kernel ``name`` over ``n`` items with the thread grid a GPU launch would use,
        capped at ``self.blocks`` blocks of ``self.threads`` threads."""
        lib = build((family,), self.flags)[family]
        kernel = getattr(lib, name)
        cargs = []
        for a in args:
            if isinstance(a, np.ndarray):
                if not a.flags.c_contiguous:
                    raise ValueError(f"minicnn.cuda.host: {name} got a non-contiguous array")
                cargs.append(ctypes.c_void_p(a.ctypes.data))
            else:
                cargs.append(_CTYPE[type(a)](a))
        blocks = min((n + self.threads - 1) // self.threads, self.blocks)
        for b in range(blocks):
            for t in range(self.threads):
                lib.mc_host_set_thread(blocks, self.threads, b, t)
                kernel(*cargs)


@contextlib.contextmanager
def emulate(runner=None):
    """Within this block, ``minicnn.cuda`` functions accept NumPy arrays and run the
    CUDA kernels on the CPU through ``runner`` (a new ``HostRunner()`` by default)."""
    previous = _launch._host
    _launch._host = runner if runner is not None else HostRunner()
    try:
        yield _launch._host
    finally:
        _launch._host = previous
