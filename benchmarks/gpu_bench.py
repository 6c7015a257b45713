"""GPU benchmark: time per ResNet-50 training step and U-Net memory per image.

    python benchmarks/gpu_bench.py                  # ResNet-50 at batch 8, 224x224; U-Net at 572x572
    python benchmarks/gpu_bench.py --steps 20 --unet-size 380
    python benchmarks/gpu_bench.py --profile        # + GPU time per op kind in one step

ResNet-50: SGD (momentum 0.9) training steps on random data, float32; the time per
step is measured with CUDA events around ``--steps`` steps after ``--warmup`` steps
(the first step also compiles the kernels with NVRTC). U-Net (the paper's network,
31M parameters, 1 -> 2 channels): the peak of live GPU memory (a CuPy memory hook)
during a training step, above the weights, gradients and optimizer state, at batch 1
and batch 2; their difference is the memory per image, the rest is workspace.

When PyTorch with CUDA imports, the same two figures are measured for it (torchvision's
ResNet-50; a twin of the paper's U-Net in torch.nn, whose peak is
torch.cuda.max_memory_allocated; TF32 off on both sides, as CuPy's
cuBLAS does not use it unless CUPY_TF32=1) and the ratio is printed. ``--profile`` times
every op's forward and backward of one ResNet-50 step with a synchronize around each,
grouped by op kind (the sum exceeds the step time by the synchronisations).

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


class _PeakLive:
    """A CuPy memory hook: bytes of live (handed out, not yet freed) pool blocks, and their
    peak. Comparable to torch.cuda.max_memory_allocated; the pool may hold more."""

    def __init__(self, cp):
        hook = self

        class Hook(cp.cuda.MemoryHook):
            name = "PeakLive"

            def malloc_postprocess(self, device_id, size, mem_size, mem_ptr, pmem_id):
                hook.live += mem_size
                hook.peak = max(hook.peak, hook.live)

            def free_postprocess(self, device_id, mem_size, mem_ptr, pmem_id):
                hook.live -= mem_size

        self.live = self.peak = 0
        self.hook = Hook()


def unet_peak(cp, batch, size):
    """Peak live bytes in the second of two U-Net training steps (the first one compiles
    the kernels), above what was live before the step (the weights, gradients and
    optimizer state), and the memory pool's size at the end."""
    pool = cp.get_default_memory_pool()
    pool.free_all_blocks()
    rng = np.random.default_rng(1)
    model = models.unet(in_channels=1, num_classes=2).to("cuda")
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = mc.tensor(rng.standard_normal((batch, 1, size, size)).astype(np.float32), device="cuda")
    with mc.no_grad():
        out_hw = model(x[:1]).shape[-2:]
    y = mc.tensor(rng.integers(0, 2, (batch,) + tuple(out_hw)), device="cuda")
    train_step(model, opt, x, y)
    cp.cuda.Device().synchronize()
    tracker = _PeakLive(cp)
    with tracker.hook:
        train_step(model, opt, x, y)
        cp.cuda.Device().synchronize()
    reserved = pool.total_bytes()
    del model, opt, x, y
    pool.free_all_blocks()
    return tracker.peak, reserved


def torch_resnet50_step_time(torch, batch, size, steps, warmup):
    import torchvision

    model = torchvision.models.resnet50().cuda().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size, device="cuda")
    y = torch.randint(0, 1000, (batch,), device="cuda")

    def step():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(steps):
        loss = step()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / steps, loss.item()


def torch_unet_peak(torch, batch, size):
    """Peak bytes torch's caching allocator hands out in the second of two training steps of
    the paper's U-Net (the first one picks cuDNN's algorithms), above what was allocated
    before the step; and the number of parameters."""
    nn = torch.nn

    def double(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3), nn.ReLU(inplace=True),
                             nn.Conv2d(cout, cout, 3), nn.ReLU(inplace=True))

    class UNet(nn.Module):
        def __init__(self, widths=(64, 128, 256, 512, 1024)):
            super().__init__()
            self.down = nn.ModuleList([double(1, widths[0])] + [
                double(a, b) for a, b in zip(widths, widths[1:])])
            self.ups = nn.ModuleList(nn.ConvTranspose2d(b, a, 2, stride=2) for a, b in zip(widths, widths[1:]))
            self.up_convs = nn.ModuleList(double(2 * a, a) for a in widths[:-1])
            self.head = nn.Conv2d(widths[0], 2, 1)

        def forward(self, x):
            skips = []
            for i, block in enumerate(self.down):
                x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
                skips.append(x)
            for up, conv, skip in reversed(list(zip(self.ups, self.up_convs, skips[:-1]))):
                x = up(x)
                dy, dx = (skip.shape[2] - x.shape[2]) // 2, (skip.shape[3] - x.shape[3]) // 2
                x = conv(torch.cat([skip[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]], x], 1))
            return self.head(x)

    torch.cuda.empty_cache()
    model = UNet().cuda()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 1, size, size, device="cuda")

    def step():
        opt.zero_grad()
        out = model(x)
        y = torch.randint(0, 2, (batch,) + tuple(out.shape[-2:]), device="cuda")
        torch.nn.functional.cross_entropy(out, y).backward()
        opt.step()

    step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    step()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    count = sum(p.numel() for p in model.parameters())
    del model, opt, x
    torch.cuda.empty_cache()
    return peak, count


def _import_torch_cuda():
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    return torch


def profile_resnet50_step(cp, batch, size):
    """GPU milliseconds per op kind (forward and backward) in one ResNet-50 training step."""
    from collections import defaultdict

    from minicnn.autograd import Function

    totals = defaultdict(float)

    def timed(cls, method):
        original = getattr(cls, method)

        def wrapper(self, *args, **kwargs):
            cp.cuda.Device().synchronize()
            t0 = time.perf_counter()
            result = original(self, *args, **kwargs)
            cp.cuda.Device().synchronize()
            totals[f"{cls.__name__}.{method}"] += time.perf_counter() - t0
            return result
        return original, wrapper

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    patched = []
    for cls in set(subclasses(Function)):
        for method in ("forward", "backward"):
            if method in vars(cls):
                original, wrapper = timed(cls, method)
                setattr(cls, method, wrapper)
                patched.append((cls, method, original))
    rng = np.random.default_rng(0)
    model = models.resnet50(num_classes=1000).to("cuda")
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = mc.tensor(rng.standard_normal((batch, 3, size, size)).astype(np.float32), device="cuda")
    y = mc.tensor(rng.integers(0, 1000, batch), device="cuda")
    try:
        for _ in range(2):  # the first step compiles the kernels
            totals.clear()
            cp.cuda.Device().synchronize()
            t0 = time.perf_counter()
            train_step(model, opt, x, y)
            cp.cuda.Device().synchronize()
            step = time.perf_counter() - t0
    finally:
        for cls, method, original in patched:
            setattr(cls, method, original)
    print(f"profile of one ResNet-50 step ({step * 1e3:.1f} ms with a synchronize around every op):")
    for name, t in sorted(totals.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {name:<32} {t * 1e3:8.1f} ms")
    print(f"  {'(not in an op: optimizer, engine)':<32} {(step - sum(totals.values())) * 1e3:8.1f} ms")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8, help="ResNet-50 batch size (default 8)")
    parser.add_argument("--size", type=int, default=224, help="ResNet-50 input size (default 224)")
    parser.add_argument("--steps", type=int, default=10, help="timed ResNet-50 steps (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--unet-size", type=int, default=572, help="U-Net input size (default 572, the paper's)")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--profile", action="store_true", help="also print GPU time per op kind")
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

    torch = None if args.no_torch else _import_torch_cuda()
    if torch is not None:
        print(f"PyTorch {torch.__version__}, cuDNN {torch.backends.cudnn.version()} (TF32 off, cudnn.benchmark on)")

    gpu_ms, wall_ms, loss = resnet50_step_time(cp, args.batch, args.size, args.steps, args.warmup)
    print(f"ResNet-50 training step, batch {args.batch}, {args.size}x{args.size}, float32: "
          f"{gpu_ms:.1f} ms GPU time ({wall_ms:.1f} ms wall) per step, mean of {args.steps} "
          f"(loss {loss:.3f})")
    if torch is not None:
        t_ms, t_loss = torch_resnet50_step_time(torch, args.batch, args.size, args.steps, args.warmup)
        print(f"  PyTorch: {t_ms:.1f} ms per step (loss {t_loss:.3f}); minicnn / PyTorch = {gpu_ms / t_ms:.2f}")

    (one, pool_one), (two, pool_two) = (unet_peak(cp, b, args.unet_size) for b in (1, 2))
    mib = 2**20
    print(f"U-Net (31M parameters) training step, {args.unet_size}x{args.unet_size}, float32: "
          f"peak live memory in a step {one / mib:.0f} MiB at batch 1, {two / mib:.0f} MiB at batch 2 "
          f"-> {(two - one) / mib:.0f} MiB per image (memory pool {pool_one / mib:.0f} / "
          f"{pool_two / mib:.0f} MiB in all)")
    if torch is not None:
        (t_one, count), (t_two, _) = (torch_unet_peak(torch, b, args.unet_size) for b in (1, 2))
        print(f"  PyTorch ({count:,} parameters): peak {t_one / mib:.0f} MiB at batch 1, {t_two / mib:.0f} MiB at batch 2 -> "
              f"{(t_two - t_one) / mib:.0f} MiB per image; minicnn / PyTorch per image = "
              f"{(two - one) / max(t_two - t_one, 1):.2f}")
    if args.profile:
        profile_resnet50_step(cp, args.batch, args.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
