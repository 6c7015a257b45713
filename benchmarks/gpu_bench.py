"""GPU benchmark: time per ResNet-50 training step and U-Net memory per image.

    python benchmarks/gpu_bench.py                  # ResNet-50 at batch 8, 224x224; U-Net at 572x572
    python benchmarks/gpu_bench.py --steps 20 --unet-size 380

ResNet-50: SGD (momentum 0.9) training steps on random data, float32; the time per
step is measured with CUDA events around ``--steps`` steps after ``--warmup`` steps
(the first step also compiles the kernels with NVRTC). U-Net (the paper's network,
31M parameters, 1 -> 2 channels): the CuPy memory pool's high-water mark for one
training step at batch 1 and batch 2; their difference is the memory per image, the
rest is the weights, gradients, optimizer state and workspace.

Needs CuPy and a CUDA GPU; without them it says why and exits with status 1.
"""
import argparse
import sys
import time

import numpy as np

import minicnn as mc
import minicnn.nn.functional as F
from minicnn import backend, models, optim


def train_step(model, opt, x, y):
    opt.zero_grad()
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss


def resnet50_step_time(cp, batch, size, steps, warmup):
    """Mean GPU time (ms) of one training step, and the wall time per step (ms)."""
    rng = np.random.default_rng(0)
    model = models.resnet50(num_classes=1000).to("cuda")
    model.train()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = mc.tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32), device="cuda")
    y = mc.tensor(rng.integers(0, 1000, batch), device="cuda")
    for _ in range(warmup):
        train_step(model, opt, x, y)
    cp.cuda.Device().synchronize()
    start, end = cp.cuda.Event(), cp.cuda.Event()
    t0 = time.perf_counter()
    start.record()
    for _ in range(steps):
        loss = train_step(model, opt, x, y)
    end.record()
    end.synchronize()
    wall = (time.perf_counter() - t0) / steps * 1e3
    return cp.cuda.get_elapsed_time(start, end) / steps, wall, loss.item()


def unet_pool_peak(cp, batch, size):
    """Bytes the memory pool holds after one U-Net training step from an empty pool.
    The pool keeps every block it ever handed out for reuse, so this is the step's
    peak usage (plus fragmentation)."""
    pool = cp.get_default_memory_pool()
    pool.free_all_blocks()
    before = pool.total_bytes()
    rng = np.random.default_rng(1)
    model = models.unet(in_channels=1, num_classes=2).to("cuda")
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = mc.tensor(rng.standard_normal((batch, 1, size, size)).astype(np.float32), device="cuda")
    with mc.no_grad():
        out_hw = model(x[:1]).shape[-2:]
    y = mc.tensor(rng.integers(0, 2, (batch,) + tuple(out_hw)), device="cuda")
    train_step(model, opt, x, y)
    cp.cuda.Device().synchronize()
    peak = pool.total_bytes() - before
    del model, opt, x, y
    pool.free_all_blocks()
    return peak


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8, help="ResNet-50 batch size (default 8)")
    parser.add_argument("--size", type=int, default=224, help="ResNet-50 input size (default 224)")
    parser.add_argument("--steps", type=int, default=10, help="timed ResNet-50 steps (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--unet-size", type=int, default=572, help="U-Net input size (default 572, the paper's)")
    args = parser.parse_args(argv)

    try:
        cp = backend.cupy_module()
    except RuntimeError as e:
        print(f"gpu_bench: no GPU to benchmark: {e}", file=sys.stderr)
        return 1
    device = cp.cuda.Device()
    name = cp.cuda.runtime.getDeviceProperties(device.id)["name"]
    name = name.decode() if isinstance(name, bytes) else name
    print(f"device {device.id}: {name}; CuPy {cp.__version__}; "
          f"CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}")

    gpu_ms, wall_ms, loss = resnet50_step_time(cp, args.batch, args.size, args.steps, args.warmup)
    print(f"ResNet-50 training step, batch {args.batch}, {args.size}x{args.size}, float32: "
          f"{gpu_ms:.1f} ms GPU time ({wall_ms:.1f} ms wall) per step, mean of {args.steps} "
          f"(loss {loss:.3f})")

    one, two = (unet_pool_peak(cp, b, args.unet_size) for b in (1, 2))
    mib = 2**20
    print(f"U-Net (31M parameters) training step, {args.unet_size}x{args.unet_size}, float32: "
          f"memory pool peak {one / mib:.0f} MiB at batch 1, {two / mib:.0f} MiB at batch 2 "
          f"-> {(two - one) / mib:.0f} MiB per image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
