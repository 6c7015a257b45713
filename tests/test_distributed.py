"""Data-parallel training: minicnn.distributed on MPI, DistributedDataParallel, SyncBatchNorm,
DistributedSampler. The MPI tests start ``mpiexec -n 2`` themselves (tests/distributed_worker.py)
and are skipped, with the reason, where mpi4py or mpiexec is missing (``pip install minicnn[mpi]``)."""
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import minicnn as mc
import minicnn.distributed as dist
import minicnn.nn as nn
import minicnn.nn.functional as F
from minicnn.data import DataLoader, DistributedSampler, TensorDataset
from minicnn.ops.normalization import sync_batch_norm

HERE = os.path.dirname(os.path.abspath(__file__))


def _mpiexec():
    """mpiexec next to this Python (the [mpi] extra's MPICH), else on the PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


def _skip_reason():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return "mpi4py is not installed (pip install minicnn[mpi])"
    if _mpiexec() is None:
        return "no mpiexec (pip install minicnn[mpi] brings MPICH's)"
    return None


needs_mpi = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def mpirun(*args, timeout=240):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(HERE),
                                                                     os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    start = time.monotonic()
    proc = subprocess.run([_mpiexec(), "-n", "2", sys.executable, os.path.join(HERE, "distributed_worker.py"),
                           *args], capture_output=True, text=True, timeout=timeout, env=env)
    return proc, time.monotonic() - start


@needs_mpi
@pytest.mark.slow
@pytest.mark.parametrize("scenario, tol", [
    ("collectives", 0), ("ddp64", 1e-12), ("buckets64", 1e-12), ("nosync64", 1e-12), ("syncbn64", 1e-12),
    ("ddp32", 1e-5), ("syncbn32", 1e-5),
])
def test_two_processes_train_as_one_with_the_whole_batch(scenario, tol):
    """2 ranks of batch B give, after 3 SGD steps, the weights (and batch-norm statistics) of one
    process with batch 2B: float64 to 1e-12, float32 to rounding; with several gradient buckets,
    with no_sync accumulation, and with SyncBatchNorm against BatchNorm on the whole batch."""
    proc, _ = mpirun(scenario)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = [s for s in proc.stdout.splitlines() if s.startswith("OK ")]
    assert line and line[0].split()[1] == scenario, proc.stdout
    assert float(line[0].split()[2]) <= tol


def _fails_with(args, messages, within):
    """Run a failing job; True if it ended non-zero, soon, with every message on stderr. MPICH's
    launcher forwards the output of a rank it is tearing down on a best-effort basis, so a busy
    machine may lose the last lines: a job gets a second try before the test fails."""
    errors = []
    for _ in range(2):
        proc, seconds = mpirun(*args, timeout=120)
        if proc.returncode != 0 and seconds < within and all(m in proc.stderr for m in messages):
            return True
        errors.append(f"rc={proc.returncode} after {seconds:.1f} s:\n{proc.stderr[-3000:]}")
    raise AssertionError("\n---\n".join(errors))


@needs_mpi
def test_a_rank_that_raises_ends_the_job_with_its_error():
    assert _fails_with(["raise"], ["ValueError: bad input on rank 1", "rank 1 failed; aborting all 2 ranks"],
                       within=60)  # not a hang


@needs_mpi
def test_a_stalled_rank_is_a_timeout_not_a_hang():
    assert _fails_with(["stall", "2"], ["did not complete within 2 s"], within=30)


# -- without MPI -------------------------------------------------------------------------------

def test_distributed_sampler_partitions_as_pytorch():
    data = list(range(10))
    shares = [list(DistributedSampler(data, 3, r, shuffle=False)) for r in range(3)]
    assert shares == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]  # padded with the first indices
    assert [list(DistributedSampler(data, 3, r, shuffle=False, drop_last=True)) for r in range(3)] == \
        [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    samplers = [DistributedSampler(data, 2, r, shuffle=True, seed=5) for r in range(2)]
    first = [list(s) for s in samplers]
    assert sorted(first[0] + first[1]) == data and len(samplers[0]) == 5
    for s in samplers:
        s.set_epoch(1)
    second = [list(s) for s in samplers]
    assert sorted(second[0] + second[1]) == data and second != first
    with pytest.raises(ValueError, match=r"rank 2 is not in \[0, 2\)"):
        DistributedSampler(data, 2, 2)


def test_data_loader_reads_the_samplers_share():
    dataset = TensorDataset(mc.tensor(np.arange(10.0)))
    loader = DataLoader(dataset, batch_size=2, sampler=DistributedSampler(dataset, 2, 1, shuffle=False))
    assert len(loader) == 3
    assert [b[0].numpy().tolist() for b in loader] == [[1.0, 3.0], [5.0, 7.0], [9.0]]
    with pytest.raises(ValueError, match="sampler and shuffle=True exclude each other"):
        DataLoader(dataset, sampler=DistributedSampler(dataset, 2, 0), shuffle=True)


def test_sync_batch_norm_on_one_process_is_batch_norm_and_passes_gradcheck():
    rng = np.random.default_rng(0)
    x = mc.tensor(rng.standard_normal((3, 4, 5, 2)), requires_grad=True)
    w, b = mc.tensor(rng.uniform(0.5, 1.5, 4), requires_grad=True), mc.tensor(rng.standard_normal(4), requires_grad=True)
    rm1, rv1, rm2, rv2 = mc.zeros(4, dtype=mc.float64), mc.ones(4, dtype=mc.float64), \
        mc.zeros(4, dtype=mc.float64), mc.ones(4, dtype=mc.float64)
    one_process = lambda a: None  # noqa: E731 (the sum over one process is the array itself)
    y = sync_batch_norm(x, rm1, rv1, w, b, 0.1, 1e-5, one_process)
    want = F.batch_norm(x, rm2, rv2, w, b, training=True)
    np.testing.assert_allclose(y.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rv1.numpy(), rv2.numpy(), rtol=1e-12)
    assert mc.gradcheck(lambda a, g, h: sync_batch_norm(a, None, None, g, h, 0.1, 1e-5, one_process), [x, w, b])


def test_sync_batch_norm_layer_without_a_group_is_batch_norm():
    bn, sync = nn.BatchNorm2d(3), nn.SyncBatchNorm(3)
    x = mc.randn(4, 3, 5, 5)
    np.testing.assert_allclose(sync(x).numpy(), bn(x).numpy(), rtol=1e-6)
    model = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3))
    weight = model[1].weight
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    assert isinstance(converted[1], nn.SyncBatchNorm) and converted[1].weight is weight
    assert list(converted.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                            "1.running_var", "1.num_batches_tracked"]


def test_without_a_process_group():
    assert not dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
    with pytest.raises(RuntimeError, match="call init_process_group"):
        dist.all_reduce(mc.ones(2))
    with pytest.raises(RuntimeError, match="call minicnn.distributed.init_process_group"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="backend must be 'mpi' or 'nccl'"):
        dist.init_process_group("gloo")


@needs_mpi
@pytest.mark.slow
def test_the_classifier_example_trains_data_parallel():
    pytest.importorskip("sklearn")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    proc = subprocess.run([_mpiexec(), "-n", "2", sys.executable, os.path.join(os.path.dirname(HERE), "examples",
                           "train_classifier.py"), "--epochs", "3"], capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].endswith("on 2 process(es)") and len(lines) == 5  # rank 0 alone prints
    assert float(lines[-1].removeprefix("test_accuracy=")) > 0.9


@needs_mpi
@pytest.mark.slow
def test_minicnn_train_runs_data_parallel_and_resumes(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")

    def train(*extra):
        proc = subprocess.run([_mpiexec(), "-n", "2", sys.executable, "-m", "minicnn", "train", "classifier",
                               "--quick", "--data", "shapes", "--batch-size", "16", "--no-progress",
                               "--checkpoint-dir", str(tmp_path),
                               *extra], capture_output=True, text=True, timeout=300, env=env)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip().splitlines()

    lines = train()
    assert sum(line.startswith("epoch 2/2") for line in lines) == 1, lines  # rank 0 alone prints
    assert "train_accuracy nan" not in lines[-2]
    state = mc.load(str(tmp_path / "last.ckpt"))
    assert not any(k.startswith("module.") for k in state["model"])  # the plain model's keys
    again = train("--resume")
    assert sum(line.startswith("resumed from") and "after epoch 2" in line for line in again) == 1
    assert not any(line.startswith("epoch ") for line in again)  # nothing left to train
    assert again[-1] == lines[-1]  # the same weights on every rank: the same test score
