"""Data-parallel training on 1 and 2 processes: time per step, images/s, and the communication.

    python benchmarks/distributed.py                 # ResNet-18 and the U-Net, 1 and 2 processes
    python benchmarks/distributed.py --steps 5 --models resnet18

It starts itself under ``mpiexec -n P`` (MPICH from ``pip install minicnn[mpi]``) for P = 1 and
2, each process with one thread in every pool, so that 2 processes use the 2 cores that 1 process
with one thread leaves half idle. Each process trains ``--batch`` images per step (DDP; the
global batch grows with the processes) and reports:

* s/step and images/s (of all processes together), the minimum over the steps after a warm-up;
* allreduce: the time a blocking all-reduce of all the gradients takes on its own (what
  communication would cost if nothing overlapped), measured after the steps;
* exposed: the time each step still waited for the reductions at the end of backward (DDP's
  ``comm_wait``, the copies back into ``.grad`` included); overlapped = 1 - exposed / allreduce
  (0 where exposed is longer: it also holds waiting for the slower process).

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE should be unset for the command, as for every benchmark.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

MODELS = {  # name: (builder arguments, input per image, loss)
    "resnet18": ("resnet18", dict(num_classes=10), (3, 112, 112), "ce"),
    "unet": ("unet_same", dict(in_channels=1, num_classes=1, base_width=32), (1, 128, 128), "bce"),
}


def worker(args):
    import minicnn as mc
    import minicnn.distributed as dist
    import minicnn.models as models
    import minicnn.nn as nn
    import minicnn.nn.functional as F
    from minicnn import optim

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    results = {}
    for name in args.models:
        builder, kwargs, size, loss_kind = MODELS[name]
        mc.manual_seed(0)
        model = nn.parallel.DistributedDataParallel(models.get_model(builder, **kwargs),
                                                    bucket_cap_mb=args.bucket_cap_mb)
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        rng = np.random.default_rng(rank)
        x = mc.tensor(rng.standard_normal((args.batch,) + size).astype(np.float32))
        if loss_kind == "ce":
            y, loss_fn = mc.tensor(rng.integers(0, 10, args.batch)), F.cross_entropy
        else:
            y = mc.tensor((rng.random((args.batch, 1) + size[1:]) > 0.5).astype(np.float32))
            loss_fn = F.binary_cross_entropy_with_logits
        times, waits = [], []
        for step in range(args.steps + 1):
            dist.barrier()
            wait0, t0 = model.comm_wait, time.perf_counter()
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
            if step:  # the first step compiles and allocates
                times.append(time.perf_counter() - t0)
                waits.append(model.comm_wait - wait0)
        grads = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
        blocking = []
        for _ in range(3):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(grads)
            blocking.append(time.perf_counter() - t0)
        results[name] = dict(step=min(times), exposed=float(np.median(waits)), allreduce=min(blocking),
                             mib=grads.nbytes / 2 ** 20, images=args.batch * world)
    if rank == 0:
        print("RESULT " + json.dumps(results), flush=True)
    dist.destroy_process_group()


def launch(processes, args):
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    mpiexec = mpiexec if os.path.exists(mpiexec) else shutil.which("mpiexec")
    if mpiexec is None:
        raise SystemExit("benchmarks/distributed.py: no mpiexec; pip install minicnn[mpi]")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    cmd = [mpiexec, "-n", str(processes), sys.executable, os.path.abspath(__file__), "--worker",
           "--steps", str(args.steps), "--batch", str(args.batch), "--bucket-cap-mb", str(args.bucket_cap_mb),
           "--models", *args.models]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    line = [s for s in out.stdout.splitlines() if s.startswith("RESULT ")]
    if out.returncode or not line:
        raise SystemExit(f"benchmarks/distributed.py: {processes} process(es) failed:\n{out.stderr[-2000:]}")
    return json.loads(line[0][len("RESULT "):])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--steps", type=int, default=4, help="timed steps after one warm-up (default: %(default)s)")
    p.add_argument("--batch", type=int, default=8, help="images per process and step (default: %(default)s)")
    p.add_argument("--bucket-cap-mb", type=float, default=25, help="DDP's bucket size (default: %(default)s)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    runs = {n: launch(n, args) for n in (1, 2)}
    print(f"data-parallel training, {args.batch} images per process and step, one thread per process "
          f"(OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')})")
    print(f"{'model':9s} {'procs':>5s} {'s/step':>7s} {'img/s':>7s} {'speed-up':>8s} {'grads MiB':>9s} "
          f"{'allreduce s':>11s} {'exposed s':>9s} {'overlapped':>10s} {'exposed/step':>12s}")
    for name in args.models:
        base = runs[1][name]["images"] / runs[1][name]["step"]
        for n in (1, 2):
            r = runs[n][name]
            rate = r["images"] / r["step"]
            # exposed also holds waiting for the slower process, so it can exceed the all-reduce itself
            overlapped = max(0.0, 1 - r["exposed"] / r["allreduce"]) if n > 1 and r["allreduce"] > 0 else float("nan")
            print(f"{name:9s} {n:5d} {r['step']:7.3f} {rate:7.2f} {rate / base:8.2f} {r['mib']:9.1f} "
                  f"{r['allreduce']:11.4f} {r['exposed']:9.4f} {overlapped:10.0%} {r['exposed'] / r['step']:12.1%}")


if __name__ == "__main__":
    main()
