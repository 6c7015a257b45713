"""How minicnn shares the CPU's cores: a batch split over cores, and an opt-in for sleeping threads.

**A batch split over cores** (``over_batch``). A convolution is a chain of small steps per
tile of images (im2col or a Winograd transform, a GEMM, a bias add), and only the GEMM is
threaded by BLAS: the copies run on one core, and every GEMM forks and joins BLAS's
threads, whose small products split badly. Giving each core its own share of the images
instead, with a single-threaded BLAS, runs every step in parallel with one fork/join per
convolution, as PyTorch's CPU convolutions do. BLAS's thread count is lowered to 1 while
the shares run and put back after, through threadpoolctl (installed with minicnn's
``[threads]`` extra; without it the GEMMs stay threaded by BLAS and nothing is split).

**Sleeping threads** (``tune_cpu_threads``, an explicit opt-in that the CLI, the bench and
the examples call; importing minicnn changes nothing). A training step alternates between
OpenBLAS's threaded products and numba's parallel loops. By default numba's OpenMP threads
spin after each loop and OpenBLAS's workers after each product, each holding a core just
when the other wants it. The opt-in makes OpenMP's threads sleep at once
(``OMP_WAIT_POLICY=PASSIVE``, read when numba starts its pool) and OpenBLAS's workers
spin for 2**``tuning.SPIN_TIMEOUT`` cycles instead of 2**28.
"""
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from .. import tuning

_split_lock = threading.Lock()  # one split at a time: each changes the process-wide BLAS setting
_local = threading.local()
_pool = None
_controller = None  # threadpoolctl's view of NumPy's BLAS, made at the first call that needs it


def _numpy_blas():
    """threadpoolctl's controller of the BLAS NumPy runs, or None without threadpoolctl."""
    global _controller
    if _controller is None:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:
            _controller = False
        else:
            blas = ThreadpoolController().select(user_api="blas")
            root = os.path.dirname(np.__file__)  # the wheel's own BLAS, next to the package
            mine = [lib for lib in blas.lib_controllers if lib.filepath.startswith(root)]
            if mine:
                blas = blas.select(filepath=[lib.filepath for lib in mine])
            _controller = blas if blas.lib_controllers else False
    return _controller or None


def blas_threads():
    """The number of threads NumPy's BLAS uses now, or None if it cannot be told."""
    blas = _numpy_blas()
    return None if blas is None else max(lib.num_threads for lib in blas.lib_controllers)


@contextlib.contextmanager
def one_blas_thread():
    """BLAS on the calling thread only inside the block, for a small product next to a split:
    after a threaded product BLAS's workers spin before they sleep, on the very cores the
    split's threads then need."""
    blas = _numpy_blas()
    if blas is None or blas_threads() < 2:
        yield
        return
    with blas.limit(limits=1):
        yield


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
    ``work`` multiply-adds under ``tuning.MIN_SPLIT_WORK``, a BLAS that cannot be told, one
    BLAS thread, or a split already running). ``fn`` must write disjoint outputs for
    disjoint parts and call no numba parallel loop (they would oversubscribe the cores)."""
    global _pool
    parts = min(blas_threads() or 1, n // max(1, min_images))
    if parts < 2 or work < tuning.MIN_SPLIT_WORK or share() > 1 or not _split_lock.acquire(blocking=False):
        return [fn(0, n)]
    try:
        if _pool is None or _pool._max_workers < parts - 1:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=parts - 1, thread_name_prefix="minicnn-batch")
        bounds = [n * p // parts for p in range(parts + 1)]
        with _numpy_blas().limit(limits=1):
            futures = [_pool.submit(_run_share, fn, parts, a, b) for a, b in zip(bounds[1:-1], bounds[2:])]
            try:
                first = _run_share(fn, parts, bounds[0], bounds[1])
            finally:
                wait(futures)  # all of them, even after an error, before BLAS gets its threads back
            return [first] + [f.result() for f in futures]
    finally:
        _split_lock.release()


class BatchSplit:
    """A convolution algorithm whose batch splits over the cores on the host (one call on the GPU).

    ``fn`` is the op's Function (its geometry, ``xp`` and ``needs_input_grad``). A subclass
    runs its forward pass through ``split`` and keeps ``self.x``, ``self.w`` and ``self.pixels``
    (pixels of one image's GEMM grid); it defines ``work()`` (multiply-adds of the forward pass) and ``share_backward(x, gy, gx, need_w,
    need_b)``, which writes ``gx`` (None: not asked for) for one share of the batch and returns
    the share's (gw, gb), gb None where the sum of gy is left to this class."""

    def __init__(self, fn):
        self.fn, self.xp = fn, fn.xp

    def split(self, run):
        """``[run(n0, n1), ...]`` over the shares of the batch."""
        n = self.x.shape[0]
        if self.xp is not np:
            return [run(0, n)]
        return over_batch(run, n, self.work(), min_images=-(-tuning.MIN_SHARE_PIXELS // max(1, self.pixels)))

    def source(self, n0, n1):
        """What ``share_backward`` reads for images n0:n1 (their input)."""
        return self.x[n0:n1]

    def backward(self, gy):
        """(gx, gw) or (gx, gw, gb), None where no gradient was asked for."""
        x, needs = self.x, self.fn.needs_input_grad
        gy = self.xp.ascontiguousarray(gy)
        need_w, need_b = needs[1], len(needs) == 3 and needs[2]
        gx = self.xp.empty(x.shape, x.dtype) if needs[0] else None

        def images(n0, n1):  # gx[n0:n1] and this share's sums for gw and gb
            gw, gb = self.share_backward(self.source(n0, n1), gy[n0:n1], None if gx is None else gx[n0:n1],
                                         need_w, need_b)
            if need_b and gb is None:
                gb = gy[n0:n1].sum(axis=(0, 2, 3))
            return gw, gb

        parts = self.split(images)
        grads = (gx, _sum(gw for gw, _ in parts))
        return grads + (_sum(gb for _, gb in parts),) if len(needs) == 3 else grads


def _sum(parts):
    """The sum of the shares' partial results (None when they are None: not asked for)."""
    parts = list(parts)
    if parts[0] is None:
        return None
    for p in parts[1:]:
        parts[0] += p
    return parts[0]


def _run_share(fn, parts, n0, n1):
    _local.share = parts
    try:
        return fn(n0, n1)
    finally:
        _local.share = 1


def _after_fork_in_child():
    """A forked child has none of the parent's worker threads: start a new pool when needed."""
    global _pool, _split_lock
    _pool, _split_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def tune_cpu_threads():
    """Opt in to threads that sleep instead of spinning: ``OMP_WAIT_POLICY=PASSIVE`` (numba's
    OpenMP pool reads it when it starts, so call this before the first training step) and
    OpenBLAS's idle workers spinning 2**tuning.SPIN_TIMEOUT cycles (its thread server is
    restarted to read the value). A variable the user set already is kept. Returns the
    settings it made, e.g. ``{"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "20"}``."""
    made = {}
    if "OMP_WAIT_POLICY" not in os.environ:
        made["OMP_WAIT_POLICY"] = os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    blas = _numpy_blas()
    if "OPENBLAS_THREAD_TIMEOUT" not in os.environ and blas is not None:
        for lib in blas.lib_controllers:
            # OpenBLAS reads the variable when its thread server starts; these two exported
            # functions re-read the environment and stop the server (the next product restarts it)
            read_env = getattr(lib.dynlib, "openblas_read_env", None)
            shutdown = getattr(lib.dynlib, "blas_thread_shutdown_", None)
            if lib.internal_api == "openblas" and read_env is not None and shutdown is not None:
                made["OPENBLAS_THREAD_TIMEOUT"] = os.environ["OPENBLAS_THREAD_TIMEOUT"] = str(tuning.SPIN_TIMEOUT)
                read_env()
                shutdown()
    return made
