"""Training steps of small networks, where per-call costs and thread hand-offs, not arithmetic, set
the pace: the CIFAR-10 tutorial's LeNet-style net and pytorch/examples' MNIST CNN.

    python benchmarks/small_steps.py [--steps 200]

Each net is timed twice in one process: with minicnn's thresholds as they are (a numba loop on a
small array runs serially, ``tuning.PARALLEL_MIN_SIZE``) and with every numba loop forced onto
its parallel build (the threshold set to 0), so the ratio shows what waking the threads costs
when they then contend with BLAS's own. Nothing global is tuned (no ``tune_cpu_threads``): this
is what a script that only imports minicnn gets. Reports the median ms per SGD step, and
PyTorch's for the same nets when it happens to be installed.

OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE should be unset for the command, as for every benchmark.
"""
import argparse
import time

import numpy as np

import minicnn as mc
from minicnn import nn, tuning
from minicnn.nn import functional as F


class LeNet(nn.Module):
    """The CIFAR-10 tutorial's net: (N, 3, 32, 32) -> 10."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, 6, 5), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = mc.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class MnistNet(nn.Module):
    """pytorch/examples' MNIST CNN: (N, 1, 28, 28) -> 10."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 3), nn.Conv2d(32, 64, 3)
        self.fc1, self.fc2 = nn.Linear(9216, 128), nn.Linear(128, 10)

    def forward(self, x):
        x = F.relu(self.conv2(F.relu(self.conv1(x))))
        x = mc.flatten(F.max_pool2d(x, 2), 1)
        return self.fc2(F.relu(self.fc1(x)))


NETS = {"lenet (batch 4)": (LeNet, (4, 3, 32, 32)), "lenet (batch 64)": (LeNet, (64, 3, 32, 32)),
        "mnist cnn (batch 64)": (MnistNet, (64, 1, 28, 28))}


def step_ms(build, shape, steps):
    mc.manual_seed(0)
    net = build()
    opt = mc.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    x, y = mc.randn(*shape), mc.tensor(np.arange(shape[0]) % 10)
    times = []
    for i in range(steps + 10):
        t = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
        if i >= 10:  # after the warm-up (numba's compilation, the allocator)
            times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def torch_step_ms(name, shape, steps):
    """The same net and step in PyTorch (None when PyTorch is not installed)."""
    try:
        import torch
    except ImportError:
        return None
    tnn, tF = torch.nn, torch.nn.functional
    torch.manual_seed(0)
    if name.startswith("lenet"):
        layers = [tnn.Conv2d(3, 6, 5), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Conv2d(6, 16, 5), tnn.ReLU(), tnn.MaxPool2d(2),
                  tnn.Flatten(), tnn.Linear(400, 120), tnn.ReLU(), tnn.Linear(120, 84), tnn.ReLU(), tnn.Linear(84, 10)]
    else:
        layers = [tnn.Conv2d(1, 32, 3), tnn.ReLU(), tnn.Conv2d(32, 64, 3), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                  tnn.Linear(9216, 128), tnn.ReLU(), tnn.Linear(128, 10)]
    net = tnn.Sequential(*layers)
    opt = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    x, y = torch.randn(*shape), torch.arange(shape[0]) % 10
    times = []
    for i in range(steps + 10):
        t = time.perf_counter()
        opt.zero_grad()
        tF.cross_entropy(net(x), y).backward()
        opt.step()
        if i >= 10:
            times.append(time.perf_counter() - t)
    return 1e3 * float(np.median(times))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200, help="timed steps per net and setting (default 200)")
    args = p.parse_args(argv)
    threshold = tuning.PARALLEL_MIN_SIZE
    print(f"{'net':24s} {'as is':>9s} {'all parallel':>13s} {'ratio':>6s} {'PyTorch':>8s}   (ms per SGD step, median)")
    for name, (build, shape) in NETS.items():
        as_is = step_ms(build, shape, args.steps)
        tuning.PARALLEL_MIN_SIZE = 0
        try:
            forced = step_ms(build, shape, args.steps)
        finally:
            tuning.PARALLEL_MIN_SIZE = threshold
        theirs = torch_step_ms(name, shape, args.steps)
        print(f"{name:24s} {as_is:9.2f} {forced:13.2f} {forced / as_is:6.1f} "
              f"{'-' if theirs is None else f'{theirs:.2f}':>8s}")


if __name__ == "__main__":
    main()
