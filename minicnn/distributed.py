"""Several processes training one model, with ``torch.distributed``'s names.

    mpiexec -n 4 python train.py             # 4 processes on this machine
    mpiexec -hosts a,b -n 8 python train.py  # 8 across two machines

    import minicnn.distributed as dist
    dist.init_process_group("mpi")           # or "nccl": one process per GPU
    rank, world = dist.get_rank(), dist.get_world_size()

The communication is an existing engine's: MPI through mpi4py (the ``[mpi]`` extra installs
mpi4py and MPICH) on the CPU, NCCL through CuPy on GPUs (its unique id sent over MPI). Each
collective is started non-blocking and waited for with a deadline (``timeout``), so a rank
that stopped taking part ends the job with an error instead of a hang; an exception that
nobody catches on one rank aborts every rank (``MPI.COMM_WORLD.Abort``), after printing it.

``nn.parallel.DistributedDataParallel`` averages gradients over the processes,
``nn.SyncBatchNorm`` computes batch statistics over all of them and
``data.DistributedSampler`` gives each its share of the dataset.
"""
import datetime
import sys
import time

import numpy as np

from . import backend
from .tensor import Tensor


class ReduceOp:
    """How ``all_reduce`` combines the processes' values."""
    SUM, PRODUCT, MIN, MAX, AVG = "sum", "product", "min", "max", "avg"


class DistributedTimeout(RuntimeError):
    """A collective did not complete within the process group's timeout."""


class _Group:
    def __init__(self, backend_name, comm, timeout, nccl=None):
        self.backend, self.comm, self.nccl = backend_name, comm, nccl
        self.rank, self.size = comm.Get_rank(), comm.Get_size()
        self.timeout = timeout.total_seconds()


_group = None
_previous_excepthook = None


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError:
        raise RuntimeError("minicnn.distributed needs mpi4py and an MPI library: pip install minicnn[mpi] "
                           "(mpi4py and MPICH)") from None
    return MPI


def init_process_group(backend="mpi", init_method=None, timeout=None, world_size=-1, rank=-1):
    """Join the processes started together (by ``mpiexec``) into one group. ``backend``: "mpi"
    (CPU arrays) or "nccl" (CuPy arrays, one GPU per process: rank r uses GPU r % count).
    ``timeout`` (a ``datetime.timedelta``, default 30 minutes, as PyTorch) bounds every collective.
    ``world_size`` and ``rank``, if given, must agree with what MPI says."""
    global _group, _previous_excepthook
    if _group is not None:
        raise RuntimeError("init_process_group: the default process group is already initialized")
    if backend not in ("mpi", "nccl"):
        raise ValueError(f"init_process_group: backend must be 'mpi' or 'nccl', got {backend!r}")
    if init_method not in (None, "env://"):
        raise ValueError(f"init_process_group: processes meet through MPI (mpiexec), not {init_method!r}")
    MPI = _mpi()
    comm = MPI.COMM_WORLD.Dup()
    for name, given, actual in (("world_size", world_size, comm.Get_size()), ("rank", rank, comm.Get_rank())):
        if given not in (-1, None) and given != actual:
            raise ValueError(f"init_process_group: {name}={given}, but MPI started this process as {name} {actual}")
    timeout = timeout or datetime.timedelta(minutes=30)
    nccl = None
    if backend == "nccl":
        cp = _cupy()
        cp.cuda.Device(comm.Get_rank() % cp.cuda.runtime.getDeviceCount()).use()
        from cupy.cuda import nccl as nccl_module
        uid = nccl_module.get_unique_id() if comm.Get_rank() == 0 else None
        uid = comm.bcast(uid, root=0)
        nccl = nccl_module.NcclCommunicator(comm.Get_size(), uid, comm.Get_rank())
    _group = _Group(backend, comm, timeout, nccl)
    _previous_excepthook = sys.excepthook
    sys.excepthook = _abort_on_uncaught


def _cupy():
    try:
        return backend.cupy_module()
    except RuntimeError as e:
        raise RuntimeError(f"init_process_group(backend='nccl') needs CuPy and GPUs: {e}") from None


def _abort_on_uncaught(kind, value, tb):
    """An exception nobody caught on this rank: show it, then end every rank of the job."""
    (_previous_excepthook or sys.__excepthook__)(kind, value, tb)
    abort_job(1)


def abort_job(exit_code=1):
    """End every rank of the job now (the others may be waiting in a collective for this one)."""
    sys.stderr.write(f"minicnn.distributed: rank {get_rank()} failed; aborting all {get_world_size()} ranks\n")
    sys.stderr.flush()
    _mpi().COMM_WORLD.Abort(exit_code)


def _require():
    if _group is None:
        raise RuntimeError("minicnn.distributed: call init_process_group() first")
    return _group


def is_available():
    """Whether mpi4py (and so the "mpi" backend) can be imported."""
    try:
        _mpi()
        return True
    except RuntimeError:
        return False


def is_initialized():
    return _group is not None


def get_rank():
    """This process's rank, 0 .. world size - 1 (0 without a process group, as one process)."""
    return 0 if _group is None else _group.rank


def get_world_size():
    """The number of processes (1 without a process group)."""
    return 1 if _group is None else _group.size


def get_backend():
    return _require().backend


def destroy_process_group():
    """Leave the group (after a barrier, so no rank leaves while others still send)."""
    global _group
    if _group is None:
        return
    barrier()
    _group.comm.Free()
    sys.excepthook = _previous_excepthook or sys.__excepthook__
    _group = None


def wait(request, what):
    """Wait for an MPI request, polling it, until the group's timeout; then raise."""
    group = _require()
    deadline, pause = time.monotonic() + group.timeout, 1e-6
    while not request.Test():
        if time.monotonic() > deadline:
            raise DistributedTimeout(f"minicnn.distributed: {what} on rank {group.rank} did not complete within "
                                     f"{group.timeout:g} s: another rank stopped taking part")
        time.sleep(pause)
        pause = min(2 * pause, 1e-3)


def _mpi_op(op):
    MPI = _mpi()
    ops = {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD, ReduceOp.MIN: MPI.MIN,
           ReduceOp.MAX: MPI.MAX}
    if op not in ops:
        raise ValueError(f"all_reduce: unknown op {op!r}; use a ReduceOp")
    return ops[op]


def _host(array, what):
    if not isinstance(array, np.ndarray):
        raise TypeError(f"minicnn.distributed.{what}: the 'mpi' backend sends CPU tensors; this one is on the GPU "
                        "(use backend='nccl', or .cpu() first)")
    if not array.flags.c_contiguous:
        raise ValueError(f"minicnn.distributed.{what}: the tensor must be contiguous")
    return array


class Work:
    """A started collective (``async_op=True``): ``wait()`` finishes it, ``is_completed()`` tests it."""

    def __init__(self, request, what, after=None):
        self.request, self.what, self.after = request, what, after

    def is_completed(self):
        return self.request is None or bool(self.request.Test())

    def wait(self):
        if self.request is not None:
            wait(self.request, self.what)
            self.request = None
            if self.after is not None:
                self.after()
        return True


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Combine ``tensor`` over every process, in place (SUM, AVG, MIN, MAX, PRODUCT)."""
    g = _require()
    array = tensor.array if isinstance(tensor, Tensor) else tensor
    if g.backend == "nccl":
        _nccl_all_reduce(g, array, op)
        return Work(None, "all_reduce") if async_op else None
    buf = _host(array, "all_reduce")
    request = g.comm.Iallreduce(_mpi().IN_PLACE, buf, op=_mpi_op(op))
    after = (lambda: np.divide(buf, g.size, out=buf, casting="unsafe")) if op == ReduceOp.AVG else None
    work = Work(request, "all_reduce", after)
    if async_op:
        return work
    work.wait()


def _nccl_all_reduce(g, array, op):
    from cupy.cuda import nccl
    ops = {ReduceOp.SUM: nccl.NCCL_SUM, ReduceOp.PRODUCT: nccl.NCCL_PROD, ReduceOp.MIN: nccl.NCCL_MIN,
           ReduceOp.MAX: nccl.NCCL_MAX, ReduceOp.AVG: nccl.NCCL_SUM}
    types = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64,
             np.dtype(np.int64): nccl.NCCL_INT64}
    cp = backend.cupy_module()
    stream = cp.cuda.get_current_stream()
    g.nccl.allReduce(array.data.ptr, array.data.ptr, array.size, types[array.dtype], ops[op], stream.ptr)
    if op == ReduceOp.AVG:
        array /= g.size


def broadcast(tensor, src=0, group=None, async_op=False):
    """Copy rank ``src``'s ``tensor`` into every other rank's, in place."""
    g = _require()
    array = tensor.array if isinstance(tensor, Tensor) else tensor
    if g.backend == "nccl":
        from cupy.cuda import nccl
        types = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64,
                 np.dtype(np.int64): nccl.NCCL_INT64}
        stream = backend.cupy_module().cuda.get_current_stream()
        g.nccl.bcast(array.data.ptr, array.size, types[array.dtype], src, stream.ptr)
        return Work(None, "broadcast") if async_op else None
    work = Work(g.comm.Ibcast(_host(array, "broadcast"), root=src), "broadcast")
    if async_op:
        return work
    work.wait()


def barrier(group=None, async_op=False):
    """Wait until every process has reached this point."""
    g = _require()
    work = Work(g.comm.Ibarrier(), "barrier")
    if async_op:
        return work
    work.wait()


def all_gather_object(object_list, obj, group=None):
    """``object_list[r]`` = rank r's ``obj`` (any picklable object), on every rank."""
    g = _require()
    object_list[:] = g.comm.allgather(obj)
