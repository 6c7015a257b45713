"""Run by tests/test_distributed.py under ``mpiexec -n 2``: one scenario per call, named in argv.

Each scenario trains on 2 processes and, on rank 0, compares with one process that trains on the
whole batch; it prints ``OK <scenario> <max difference>`` or raises (the job then aborts).
"""
import datetime
import sys
import time

import numpy as np

import minicnn as mc
import minicnn.distributed as dist
import minicnn.nn as nn
import minicnn.nn.functional as F
from minicnn import optim


class Net(nn.Module):
    def __init__(self, bn=False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(6) if bn else nn.Identity()
        self.conv2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.conv2(x))
        return self.fc(x.flatten(1))


def build(dtype, bn):
    mc.manual_seed(0)
    net = Net(bn)
    return net.double() if dtype == np.float64 else net


def data(dtype, steps, batch, world):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((steps, world * batch, 3, 8, 8)).astype(dtype)
    y = rng.integers(0, 5, (steps, world * batch))
    return x, y


def train(model, x, y, micro=1, ddp=None):
    """SGD with momentum over len(x) steps; each step's batch is cut into ``micro`` backward passes."""
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for xs, ys in zip(x, y):
        opt.zero_grad()
        parts = np.array_split(np.arange(len(xs)), micro)
        for i, part in enumerate(parts):
            sync = ddp is None or i == micro - 1
            with (ddp.no_sync() if not sync else _nothing()):
                loss = F.cross_entropy(model(mc.tensor(xs[part])), mc.tensor(ys[part])) / micro
                loss.backward()
        opt.step()


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def compare(a, b):
    diffs = [np.abs(a[k] - b[k]).max() / max(np.abs(b[k]).max(), 1e-30) for k in b]
    return max(diffs)


def scenario_ddp(dtype, bucket_cap_mb=25, micro=1, bn=False, steps=3, batch=4):
    rank, world = dist.get_rank(), dist.get_world_size()
    x, y = data(dtype, steps, batch, world)
    model = build(dtype, bn)
    if bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = nn.parallel.DistributedDataParallel(model, bucket_cap_mb=bucket_cap_mb)
    if bucket_cap_mb < 1:
        assert len(ddp._buckets) > 1, len(ddp._buckets)
    mine = slice(rank * batch, (rank + 1) * batch)
    train(ddp, x[:, mine], y[:, mine], micro, ddp)
    got = {k: v.copy() for k, v in model.state_dict().items()}
    if rank == 0:
        ref = build(dtype, bn)
        train(ref, x, y, micro)
        want = ref.state_dict()
        assert list(got) == list(want)
        return compare(got, want)
    return 0.0


def main():
    name = sys.argv[1]
    timeout = datetime.timedelta(seconds=float(sys.argv[2])) if len(sys.argv) > 2 else None
    dist.init_process_group("mpi", timeout=timeout)
    rank = dist.get_rank()
    if name == "collectives":
        t = mc.tensor(np.array([rank + 1.0, 10.0 * rank]))
        dist.all_reduce(t)
        assert t.numpy().tolist() == [3.0, 10.0], t.numpy()
        t = mc.tensor(np.array([rank + 1.0]))
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        assert t.item() == 2.0
        t = mc.tensor(np.array([rank + 1.0]))
        dist.all_reduce(t, op=dist.ReduceOp.AVG)
        assert t.item() == 1.5
        t = mc.tensor(np.full(3, float(rank)))
        dist.broadcast(t, src=1)
        assert t.numpy().tolist() == [1.0, 1.0, 1.0]
        work = dist.all_reduce(mc.tensor(np.ones(4)), async_op=True)
        work.wait()
        objects = [None, None]
        dist.all_gather_object(objects, {"rank": rank})
        assert objects == [{"rank": 0}, {"rank": 1}]
        dist.barrier()
        diff = 0.0
    elif name == "raise":
        if rank == 1:
            raise ValueError("bad input on rank 1")
        dist.all_reduce(mc.tensor(np.ones(3)))  # rank 0 waits here until the abort ends it
        diff = 0.0
    elif name == "stall":
        if rank == 1:
            time.sleep(60)
        dist.all_reduce(mc.tensor(np.ones(3)))
        diff = 0.0
    else:
        dtype = np.float32 if name.endswith("32") else np.float64
        kwargs = {"ddp64": {}, "ddp32": {}, "buckets64": dict(bucket_cap_mb=0.0005),
                  "nosync64": dict(micro=2), "syncbn64": dict(bn=True), "syncbn32": dict(bn=True)}[name]
        diff = scenario_ddp(dtype, **kwargs)
    if rank == 0:
        print(f"OK {name} {diff:.3e}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
