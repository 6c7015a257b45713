"""How minicnn shares the CPU's cores: sleeping OpenMP threads, and a batch split over cores.

**Sleeping OpenMP threads.** A CPU training step alternates between OpenBLAS's threaded
matrix products and numba's parallel loops (batch norm, ReLU, the optimizer). The two
libraries keep separate thread pools, and by default numba's OpenMP threads spin for a while
after each loop, holding a core just when OpenBLAS's threads want it (and the reverse). So
unless the user chose otherwise, OpenMP's threads sleep as soon as their loop ends (ResNet-50
training step, batch 8, 2 idle cores: 4.4-4.9 s with OpenMP's default, 2.4-2.7 s with
``OMP_WAIT_POLICY=PASSIVE``). This must run before numba starts its OpenMP pool, which is why
``minicnn.cpu`` imports this module first; it changes nothing if an OpenMP runtime was
already loaded (e.g. by importing PyTorch first).

**A batch split over cores** (``over_batch``). A convolution is a chain of small steps per
tile of images (im2col or a Winograd transform, a GEMM, a bias add), and only the GEMM is
threaded by BLAS: the copies run on one core, and every GEMM forks and joins BLAS's
threads, whose small products (64x64 by 64x500 in a Winograd layer) split badly in two.
Giving each core its own share of the images instead, with a single-threaded BLAS, runs
every step in parallel with one fork/join per convolution, as PyTorch's CPU convolutions
do. Measured (2 idle cores, batch 8, float32, forward+backward, threaded BLAS -> split):
3x3 64->64@56 (Winograd) 41 -> 24 ms, 1x1 256->64@56 17.3 -> 15.8, the 7x7/2 and 11x11/4
stems 32.9 -> 29.3 and 19.2 -> 15.7.

**OpenBLAS's workers spin briefly.** After a threaded product OpenBLAS's worker threads
busy-wait for the next one, by default 2**28 cycles (~0.1 s), on the very cores that a batch
split's threads, numba's loops, or another framework need next. Unless the user set
``OPENBLAS_THREAD_TIMEOUT``, minicnn sets it to 2**20 cycles (~0.3 ms: long enough to keep
the workers awake between the products of one convolution) and restarts NumPy's OpenBLAS
thread server so that it reads the value (``_shorten_spinning``). Measured (2 idle cores,
2 threads): U-Net step, batch 1, 1.98-2.13 -> 1.65-1.80 s; VGG-16 inference, batch 4,
0.584 -> 0.537 s; ResNet-50 step, batch 8, 1.43-1.46 -> 1.38-1.43 s.

That needs the BLAS's thread count at run time. NumPy's wheels bundle OpenBLAS, which
exports ``openblas_set_num_threads`` (a process-wide setting): ``over_batch`` lowers it to 1
while the shares run and puts it back after. With another BLAS (MKL, Accelerate), or a
count of 1, the convolution runs as before, its GEMMs threaded by that BLAS.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import contextlib  # noqa: E402
import ctypes  # noqa: E402
import glob  # noqa: E402
import threading  # noqa: E402
from concurrent.futures import ThreadPoolExecutor, wait  # noqa: E402

import numpy as np  # noqa: E402


def _find_openblas():
    """(set_num_threads, get_num_threads) of the OpenBLAS NumPy was built with, or None.

    The manylinux/macOS/Windows wheels ship it next to the package (numpy.libs, .dylibs);
    its symbols carry a prefix (``scipy_openblas_...64_``) in NumPy 2's builds."""
    root = os.path.dirname(np.__file__)
    names = [("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
             ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
             ("openblas_set_num_threads", "openblas_get_num_threads")]
    for path in sorted(glob.glob(os.path.join(root + ".libs", "*openblas*"))
                       + glob.glob(os.path.join(root, ".dylibs", "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)  # already loaded by NumPy: this only looks it up
        except OSError:
            continue
        for set_name, get_name in names:
            if hasattr(lib, set_name) and hasattr(lib, get_name):
                setter, getter = getattr(lib, set_name), getattr(lib, get_name)
                setter.argtypes, setter.restype, getter.restype = [ctypes.c_int], None, ctypes.c_int
                _shorten_spinning(lib)
                return setter, getter
    return None


SPIN_TIMEOUT = 20  # log2 of the cycles OpenBLAS's idle workers spin (its default: 28)


def _shorten_spinning(lib):
    """Make ``lib``'s (NumPy's OpenBLAS) idle workers spin 2**SPIN_TIMEOUT cycles instead of
    2**28, unless OPENBLAS_THREAD_TIMEOUT is set already. OpenBLAS reads the variable when
    it starts its thread server, so this sets it, has OpenBLAS read its environment again
    (``openblas_read_env``) and stops the server (``blas_thread_shutdown_``, what OpenBLAS
    does in a forked child); the next threaded product starts it again with the new value.
    Both are exported but not documented: without them nothing changes. Runs once, on import,
    before minicnn runs any product."""
    if "OPENBLAS_THREAD_TIMEOUT" in os.environ:
        return
    read_env, shutdown = getattr(lib, "openblas_read_env", None), getattr(lib, "blas_thread_shutdown_", None)
    if read_env is None or shutdown is None:
        return
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(SPIN_TIMEOUT)  # children's OpenBLAS reads it as well
    read_env()
    shutdown()


_blas = _find_openblas()
_split_lock = threading.Lock()  # one split at a time: each changes the process-wide BLAS setting
_local = threading.local()
_pool = None
# below this many multiply-adds a split costs more (waking a thread, ~50 us) than it saves
MIN_SPLIT_WORK = 1 << 23


def blas_threads():
    """The number of threads NumPy's OpenBLAS uses now, or None if it cannot be told."""
    return None if _blas is None else _blas[1]()


@contextlib.contextmanager
def one_blas_thread():
    """BLAS on the calling thread only inside the block, for a small product next to a split:
    after a threaded product OpenBLAS's worker threads spin before they sleep, on the very
    cores the split's threads then need (a 64->64 Winograd convolution at 256x256, batch 1:
    31 ms after its filter transform ran on 2 BLAS threads, 19 ms after 1)."""
    threads = blas_threads()
    if threads is None or threads < 2:
        yield
        return
    _blas[0](1)
    try:
        yield
    finally:
        _blas[0](threads)


def single_blas():
    """Whether this thread's BLAS products run on one thread: in a share of a batch split, or
    with a BLAS of one thread."""
    return share() > 1 or blas_threads() == 1


def share():
    """How many threads share the current batch split (1 outside one): a thread's part of
    the workspace limit is the limit divided by this."""
    return getattr(_local, "share", 1)


def over_batch(fn, n, work, min_images=1):
    """``[fn(n0, n1), ...]`` over contiguous parts of ``range(n)`` (in order), run at once,
    one per BLAS thread, each thread with a single-threaded BLAS; or ``[fn(0, n)]`` when
    that is not possible or not worth it (fewer than 2 parts of ``min_images`` images,
    ``work`` multiply-adds under ``MIN_SPLIT_WORK``, a BLAS that cannot be told, one BLAS
    thread, or a split already running). ``fn`` must write disjoint outputs for disjoint
    parts and call no numba parallel loop (they would oversubscribe the cores)."""
    global _pool
    threads = blas_threads() or 1
    parts = min(threads, n // max(1, min_images))
    if parts < 2 or work < MIN_SPLIT_WORK or share() > 1 or not _split_lock.acquire(blocking=False):
        return [fn(0, n)]
    try:
        if _pool is None or _pool._max_workers < parts - 1:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=parts - 1, thread_name_prefix="minicnn-batch")
        bounds = [n * p // parts for p in range(parts + 1)]
        _blas[0](1)
        try:
            futures = [_pool.submit(_run_share, fn, parts, a, b) for a, b in zip(bounds[1:-1], bounds[2:])]
            try:
                first = _run_share(fn, parts, bounds[0], bounds[1])
            finally:
                wait(futures)  # all of them, even after an error, before BLAS gets its threads back
            return [first] + [f.result() for f in futures]
        finally:
            _blas[0](threads)
    finally:
        _split_lock.release()


def _after_fork_in_child():
    """A forked child has none of the parent's worker threads: start a new pool when needed."""
    global _pool, _split_lock
    _pool, _split_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _run_share(fn, parts, n0, n1):
    _local.share = parts
    try:
        return fn(n0, n1)
    finally:
        _local.share = 1
