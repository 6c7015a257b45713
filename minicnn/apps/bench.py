"""CPU benchmarks: per-layer and whole-model timings, side by side with PyTorch when it is installed.

    minicnn bench                    layers and models (PyTorch columns if torch imports)
    minicnn bench --layers --quick   small shapes, a few seconds
    minicnn bench --models --repeat 5
    python benchmarks/layers.py      the same as ``minicnn bench --layers``

Layers: forward (under ``no_grad``) and forward+backward time, the minimum over ``--repeat``
runs (the machine may be shared: the minimum is the run least disturbed), GFLOP/s for
convolutions and that rate as a fraction of the GEMM peak NumPy's BLAS reaches in the same
run (np.matmul on a large float32 square; the best of the runs before and after the layers).
minicnn and PyTorch run alternately, so both see the same load.

Models: each model and framework runs in its own subprocess, so the peak resident memory
of one does not mix with another's; ``--rounds`` such runs alternate between the frameworks
(so a burst of load from elsewhere hits both) and the minimum is reported. "peak" is the
process's peak RSS while the steps run (Linux VmHWM, reset after the model is built so that
building it does not count; elsewhere ``ru_maxrss`` of the whole process); "work" is that
peak minus the RSS after the imports and a tiny warm-up (the interpreter, the libraries and
their compiled kernels), i.e. the model's parameters, gradients, optimiser state,
activations and scratch. Times are per step (after one warm-up step).

On a shared machine ``--threads 1 --clock cpu`` gives the steadiest comparison: every pool
single-threaded and the process's own CPU time, which other processes barely change.

Allocator (``--malloc``): by default glibc is told to keep freed memory in the process
(``keep_freed_memory``), for both frameworks alike. With glibc's defaults a big block freed by
one framework may go back to the OS and be page-faulted in again by the next call of the
other: a 26 MB output then costs ~13 ms of page faults here, and PyTorch's 7x7 stem took 23
or 46 ms from one run to the next. ``--malloc system`` leaves glibc's defaults.

PyTorch is never a dependency: without it the torch columns are left out.
"""
import argparse
import ctypes
import datetime
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time

import numpy as np

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter  # --clock: wall time, or the CPU time of this process (all its threads)

ENV_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
            "NUMBA_THREADING_LAYER", "OPENBLAS_CORETYPE", "OPENBLAS_THREAD_TIMEOUT", "MALLOC_MMAP_THRESHOLD_",
            "MALLOC_TRIM_THRESHOLD_", "MALLOC_ARENA_MAX", "OMP_WAIT_POLICY")


# -- layers --------------------------------------------------------------------------------------
# name, kind, input shape (N, C, H, W), parameters. Convolutions on the image itself (the stems)
# need no input gradient, as in a network; the others do.
LAYERS = [
    ("conv 3x3 64->64 @56", "conv", (8, 64, 56, 56), dict(out=64, k=3, stride=1, pad=1, input_grad=True)),
    ("conv 1x1 256->64 @56", "conv", (8, 256, 56, 56), dict(out=64, k=1, stride=1, pad=0, input_grad=True)),
    ("conv 7x7/2 3->64 @224", "conv", (8, 3, 224, 224), dict(out=64, k=7, stride=2, pad=3, input_grad=False)),
    ("conv 11x11/4 3->64 @224", "conv", (8, 3, 224, 224), dict(out=64, k=11, stride=4, pad=2, input_grad=False)),
    ("depthwise 3x3 728 @19", "conv", (8, 728, 19, 19), dict(out=728, k=3, stride=1, pad=1, input_grad=True,
                                                              groups=728)),
    ("depthwise 3x3 128 @112", "conv", (8, 128, 112, 112), dict(out=128, k=3, stride=1, pad=1, input_grad=True,
                                                                 groups=128)),
    ("max-pool 3x3/2 @112", "maxpool", (8, 64, 112, 112), dict(k=3, stride=2, pad=1)),
    ("batch norm (train) @112", "bn", (8, 64, 112, 112), {}),
    ("relu @112", "relu", (8, 64, 112, 112), {}),
    ("LRN size 5 96ch @55", "lrn", (8, 96, 55, 55), dict(size=5, alpha=1e-4, beta=0.75, k=2.0)),
]
QUICK_LAYERS = [(name, kind, (1, shape[1], max(8, shape[2] // 8), max(8, shape[3] // 8)), p)
                for name, kind, shape, p in LAYERS]


def _conv_flops(shape, p):
    n, c, h, w = shape
    oh = (h + 2 * p["pad"] - p["k"]) // p["stride"] + 1
    ow = (w + 2 * p["pad"] - p["k"]) // p["stride"] + 1
    fwd = 2 * n * p["out"] * c // p.get("groups", 1) * p["k"] ** 2 * oh * ow
    return fwd, fwd * (3 if p["input_grad"] else 2)  # backward: weight gradient (+ input gradient)


class _Minicnn:
    """Builds one layer's forward and forward+backward closures with minicnn. ``lib`` is the
    framework's top module; the layers are written once against its PyTorch-shaped API."""

    name = "minicnn"

    def __init__(self):
        import minicnn as lib
        import minicnn.nn.functional as F
        self.lib, self.F = lib, F

    def tensor(self, a, grad=False):
        return self.lib.tensor(a, requires_grad=grad)

    def layer(self, kind, x, p, rng):
        lib, F = self.lib, self.F
        c = x.shape[1]
        grad_x = kind != "conv" or p["input_grad"]
        tx = self.tensor(x, grad_x)
        params = []
        if kind == "conv":
            groups = p.get("groups", 1)
            w = (rng.standard_normal((p["out"], c // groups, p["k"], p["k"])) * 0.05).astype(np.float32)
            tw, tb = self.tensor(w, True), self.tensor(np.zeros(p["out"], np.float32), True)
            params = [tw, tb]
            fn = lambda: F.conv2d(tx, tw, tb, stride=p["stride"], padding=p["pad"], groups=groups)  # noqa: E731
        elif kind == "maxpool":
            fn = lambda: F.max_pool2d(tx, p["k"], p["stride"], p["pad"])  # noqa: E731
        elif kind == "bn":
            rm, rv = lib.zeros(c), lib.ones(c)
            tw, tb = self.tensor(np.ones(c, np.float32), True), self.tensor(np.zeros(c, np.float32), True)
            params = [tw, tb]
            fn = lambda: F.batch_norm(tx, rm, rv, tw, tb, training=True)  # noqa: E731
        elif kind == "relu":
            fn = lambda: F.relu(tx)  # noqa: E731
        elif kind == "lrn":
            fn = lambda: F.local_response_norm(tx, p["size"], p["alpha"], p["beta"], p["k"])  # noqa: E731
        leaves = [tx] + params if grad_x else params
        with lib.no_grad():
            gy = self.tensor(rng.standard_normal(tuple(fn().shape)).astype(np.float32))

        def forward():
            with lib.no_grad():
                fn()

        def forward_backward():
            for t in leaves:
                t.grad = None
            fn().backward(gy)
        return forward, forward_backward


class _Torch(_Minicnn):
    """The same layers with torch.nn.functional."""

    name = "torch"

    def __init__(self):
        import torch as lib
        import torch.nn.functional as F
        self.lib, self.F = lib, F


def _best(fn, repeat):
    """Minimum time of ``repeat`` calls (after one warm-up call)."""
    fn()
    best = math.inf
    for _ in range(repeat):
        t = _clock()
        fn()
        best = min(best, _clock() - t)
    return best


def _best_interleaved(fns, repeat):
    """Minimum time of each function, calling them in turn so that all see the same load."""
    for fn in fns:
        fn()
    best = [math.inf] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t = _clock()
            fn()
            best[i] = min(best[i], _clock() - t)
    return best


def gemm_peak(n=2048, repeat=5):
    """Best GFLOP/s of np.matmul on two n x n float32 matrices."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), np.float32)
    b = rng.standard_normal((n, n), np.float32)
    out = np.empty((n, n), np.float32)
    return 2 * n ** 3 / _best(lambda: np.matmul(a, b, out=out), repeat) / 1e9


def run_layers(args, frameworks, out):
    """Print the per-layer table; returns its rows as dicts."""
    layers = QUICK_LAYERS if args.quick else LAYERS
    gemm_n = 512 if args.quick else 2048
    peak = gemm_peak(gemm_n, args.repeat)
    rng = np.random.default_rng(0)
    rows = []
    results = []
    for name, kind, shape, p in layers:
        x = rng.standard_normal(shape).astype(np.float32)
        if kind == "maxpool":
            x = np.maximum(x, 0)  # as after a ReLU
        fns = [fw.layer(kind, x, p, np.random.default_rng(1)) for fw in frameworks]
        fwd = _best_interleaved([f for f, _ in fns], args.repeat)
        fb = _best_interleaved([g for _, g in fns], args.repeat)
        results.append((name, kind, shape, p, fwd, fb))
        del fns
    peak = max(peak, gemm_peak(gemm_n, args.repeat))
    torch = len(frameworks) > 1
    head = ["layer", "input", "fwd ms", "f+b ms", "GFLOP/s", "% peak"]
    if torch:
        head += ["torch fwd", "torch f+b", "GFLOP/s", "% peak", "x fwd", "x f+b"]
    for name, kind, shape, p, fwd, fb in results:
        flops = _conv_flops(shape, p) if kind == "conv" else None
        row = {"layer": name, "input": "x".join(map(str, shape)), "fwd_ms": fwd[0] * 1e3, "fb_ms": fb[0] * 1e3}
        cells = [name, row["input"], f"{fwd[0] * 1e3:.2f}", f"{fb[0] * 1e3:.2f}"]
        cells += _rate_cells(flops, fwd[0], fb[0], peak, row, "")
        if torch:
            row.update(torch_fwd_ms=fwd[1] * 1e3, torch_fb_ms=fb[1] * 1e3,
                       ratio_fwd=fwd[0] / fwd[1], ratio_fb=fb[0] / fb[1])
            cells += [f"{fwd[1] * 1e3:.2f}", f"{fb[1] * 1e3:.2f}"]
            cells += _rate_cells(flops, fwd[1], fb[1], peak, row, "torch_")
            cells += [f"{row['ratio_fwd']:.2f}", f"{row['ratio_fb']:.2f}"]
        rows.append(cells)
        results_row = row
        out.setdefault("layers", []).append(results_row)
    out["gemm_peak_gflops"] = peak
    print(f"\nLayers (float32; min of {args.repeat} runs, {_clock_name(args)}; GFLOP/s and % of the GEMM "
          f"peak are for forward+backward; 'x' = minicnn time / torch time)")
    print(f"GEMM peak: np.matmul {gemm_n}x{gemm_n} float32, best of the runs before and after: "
          f"{peak:.1f} GFLOP/s")
    _table(head, rows)
    return out


def _clock_name(args):
    return "wall time" if args.clock == "wall" else "CPU time of the process"


def _rate_cells(flops, t_fwd, t_fb, peak, row, prefix):
    if flops is None:
        return ["-", "-"]
    rate = flops[1] / t_fb / 1e9
    row[prefix + "fb_gflops"] = rate
    row[prefix + "fb_peak_fraction"] = rate / peak
    row[prefix + "fwd_gflops"] = flops[0] / t_fwd / 1e9
    return [f"{rate:.1f}", f"{100 * rate / peak:.0f}%"]


def _table(head, rows):
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    line = lambda cells: "  ".join(  # noqa: E731
        f"{c:<{w}}" if i < 2 else f"{c:>{w}}" for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    print(line(head))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))


# -- models --------------------------------------------------------------------------------------
# name, model function, batch, input (C, H, W), what a step is
MODELS = [
    ("resnet50", "resnet50", 8, (3, 224, 224), "train"),
    ("vgg16", "vgg16", 4, (3, 224, 224), "infer"),
    ("unet_same", "unet_same", 1, (1, 256, 256), "train"),
    ("xception", "xception", 4, (3, 299, 299), "train"),
    ("xception_infer", "xception", 4, (3, 299, 299), "infer"),
]
QUICK_MODELS = [
    ("resnet50", "resnet50", 1, (3, 64, 64), "train"),
    ("vgg16", "vgg16", 1, (3, 32, 32), "infer"),
    ("unet_same", "unet_same", 1, (1, 32, 32), "train"),
    ("xception", "xception", 1, (3, 71, 71), "train"),
    ("xception_infer", "xception", 1, (3, 71, 71), "infer"),
]


def _rss_bytes():
    """Current resident set size (Linux /proc; elsewhere the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return _peak_rss_bytes()


def _peak_rss_bytes():
    """Peak RSS since the last ``_reset_peak_rss`` (Linux VmHWM), else of the whole process."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


def _reset_peak_rss():
    """Start a new peak-RSS window (Linux >= 4.0: writing 5 to clear_refs resets VmHWM), so the
    peak covers the steps only, not building the model; False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _child_minicnn(spec):
    """One model with minicnn: returns (per-step times, import RSS)."""
    import minicnn as mc
    import minicnn.models as models
    import minicnn.nn.functional as F
    from minicnn import optim

    _warm_minicnn(mc, F)
    rss_import = _rss_bytes()
    mc.manual_seed(0)
    model = models.get_model(spec["model"])
    rng = np.random.default_rng(0)
    x = mc.tensor(rng.standard_normal((spec["batch"],) + tuple(spec["input"])).astype(np.float32))
    if spec["step"] == "infer":
        model.eval()

        def step():
            with mc.no_grad():
                model(x)
    else:
        model.train()
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        if spec["model"].startswith("unet"):
            target = mc.tensor((rng.random((spec["batch"], 1) + tuple(spec["input"][1:])) > 0.5).astype(np.float32))
            loss_fn = F.binary_cross_entropy_with_logits
        else:
            target = mc.tensor(rng.integers(0, 1000, spec["batch"]))
            loss_fn = F.cross_entropy

        def step():
            opt.zero_grad()
            loss = loss_fn(model(x), target)
            loss.backward()
            opt.step()
    steps_only = _reset_peak_rss()
    return _time_steps(step, spec["repeat"]), rss_import, steps_only


def _warm_minicnn(mc, F):
    """Load the compiled kernels a model step uses (from numba's cache) before the baseline RSS."""
    x = mc.randn(2, 3, 8, 8, requires_grad=True)
    w = mc.randn(4, 3, 3, 3, requires_grad=True)
    y = F.max_pool2d(F.relu(F.batch_norm(F.conv2d(x, w, padding=1), None, None, training=True)), 2)
    y.sum().backward()


def _child_torch(spec):
    import torch
    import torch.nn.functional as F
    import torchvision

    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    F.max_pool2d(F.relu(F.batch_norm(F.conv2d(x, torch.randn(4, 3, 3, 3), padding=1), None, None,
                                     training=True)), 2).sum().backward()
    rss_import = _rss_bytes()
    torch.manual_seed(0)
    if spec["model"] == "unet_same":
        model = _torch_unet_same()
    elif spec["model"] == "xception":
        model = _torch_xception()
    else:
        model = getattr(torchvision.models, spec["model"])(weights=None)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((spec["batch"],) + tuple(spec["input"])).astype(np.float32))
    if spec["step"] == "infer":
        model.eval()

        def step():
            with torch.no_grad():
                model(x)
    else:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        if spec["model"].startswith("unet"):
            target = torch.from_numpy(
                (rng.random((spec["batch"], 1) + tuple(spec["input"][1:])) > 0.5).astype(np.float32))
            loss_fn = F.binary_cross_entropy_with_logits
        else:
            target = torch.from_numpy(rng.integers(0, 1000, spec["batch"]))
            loss_fn = F.cross_entropy

        def step():
            opt.zero_grad()
            loss = loss_fn(model(x), target)
            loss.backward()
            opt.step()
    steps_only = _reset_peak_rss()
    return _time_steps(step, spec["repeat"]), rss_import, steps_only


def _torch_unet_same(in_channels=1, num_classes=1, base_width=64, depth=5):
    """PyTorch twin of ``minicnn.models.unet_same`` (same layers and shapes) for the comparison."""
    from torch import cat, nn

    def double(cin, cout, dropout):
        layers = [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True),
                  nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(inplace=True)]
        return nn.Sequential(*layers, *([nn.Dropout(dropout)] if dropout else []))

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            widths = [base_width * 2 ** i for i in range(depth)]
            cins = [in_channels] + widths[:-1]
            self.down = nn.ModuleList(double(c, w, 0.5 if i >= depth - 2 else 0.0)
                                      for i, (c, w) in enumerate(zip(cins, widths)))
            self.pool = nn.MaxPool2d(2, 2)
            self.ups = nn.ModuleList(nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                                                   nn.Conv2d(widths[i + 1], widths[i], 2, padding="same"),
                                                   nn.ReLU(inplace=True))
                                     for i in reversed(range(depth - 1)))
            self.convs = nn.ModuleList(double(2 * widths[i], widths[i], 0.0) for i in reversed(range(depth - 1)))
            self.head = nn.Sequential(nn.Conv2d(widths[0], 2, 3, padding=1), nn.ReLU(inplace=True),
                                      nn.Conv2d(2, num_classes, 1))

        def forward(self, x):
            skips = []
            for i, block in enumerate(self.down):
                x = block(self.pool(x) if i else x)
                skips.append(x)
            skips.pop()
            for up, conv in zip(self.ups, self.convs):
                x = conv(cat([skips.pop(), up(x)], 1))
            return self.head(x)

    return UNet()


def _torch_xception():
    """timm's ``legacy_xception``, the model ``minicnn.models.xception`` follows name for name."""
    try:
        import timm
    except ImportError:
        raise SystemExit("PyTorch's Xception comes from timm, which is not installed") from None
    return timm.create_model("legacy_xception", pretrained=False)


def _time_steps(step, repeat):
    step()  # warm-up: first-call costs, optimiser state
    times = []
    for _ in range(repeat):
        t = _clock()
        step()
        times.append(_clock() - t)
    return times


def _child(spec):
    global _clock
    spec = json.loads(spec)
    _clock = CLOCKS[spec.get("clock", "wall")]
    if spec.get("malloc", "keep") == "keep":
        keep_freed_memory()
    run = _child_torch if spec["framework"] == "torch" else _child_minicnn
    times, rss_import, steps_only = run(spec)
    print(json.dumps({"times": times, "rss_import": rss_import, "rss_peak": _peak_rss_bytes(),
                      "steps_only": steps_only}))
    return 0


def _child_env(env):
    """``env`` with this minicnn first on PYTHONPATH, so that a child imports the same code."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return dict(env, PYTHONPATH=os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")])))


def _run_child(spec):
    """Run one (model, framework) in a fresh interpreter; the result dict, or {'error': ...}."""
    proc = subprocess.run([sys.executable, "-m", "minicnn.apps.bench", "--child", json.dumps(spec)],
                          capture_output=True, text=True, env=_child_env(os.environ))
    lines = proc.stdout.strip().splitlines()
    if proc.returncode or not lines:
        tail = (proc.stderr.strip().splitlines() or ["exit code %d" % proc.returncode])[-1]
        return {"error": tail}
    return json.loads(lines[-1])


def _merge_runs(runs):
    """One result from several child runs: all step times; the smallest peak (the run least
    disturbed; the peak hardly varies); an error only if every run failed."""
    ok = [r for r in runs if "error" not in r]
    if not ok:
        return runs[0]
    best = min(ok, key=lambda r: r["rss_peak"] - r["rss_import"])
    return dict(best, times=[t for r in ok for t in r["times"]], runs=len(ok))


def run_models(args, frameworks, out):
    models = [m for m in (QUICK_MODELS if args.quick else MODELS) if not args.models or m[0] in args.models]
    repeat = args.repeat
    names = [fw.name for fw in frameworks]
    rows = []
    for name, fn, batch, input_size, step in models:
        runs = {fw: [] for fw in names}
        for _ in range(args.rounds):  # frameworks alternate, so a burst of load hits both
            for fw in names:
                spec = dict(model=fn, framework=fw, batch=batch, input=input_size, step=step, repeat=repeat,
                            clock=args.clock, malloc=args.malloc)
                runs[fw].append(_run_child(spec))
        res = {fw: _merge_runs(r) for fw, r in runs.items()}
        rows.append((name, batch, input_size, step, res))
        steps_only = all(r.get("steps_only", True) for r in res.values())
        out.setdefault("models", []).append(dict(model=name, batch=batch, input=input_size, step=step, **res))
    mib = 2 ** 20
    head = ["model", "step", "s/step", "img/s", "peak MiB", "work MiB"]
    if len(names) > 1:
        head += ["torch s/step", "img/s", "peak MiB", "work MiB", "x time", "x work mem"]
    table = []
    for name, batch, input_size, step, res in rows:
        what = f"{'training' if step == 'train' else 'inference'} b{batch} {input_size[1]}x{input_size[2]}"
        cells = [name, what]
        stats = {}
        for fw in names:
            r = res[fw]
            if "error" in r:
                cells += ["error: " + r["error"][:60], "", "", ""]
                continue
            t = min(r["times"])
            stats[fw] = (t, r["rss_peak"] - r["rss_import"])
            cells += [f"{t:.3f}", f"{batch / t:.2f}", f"{r['rss_peak'] / mib:.0f}",
                      f"{(r['rss_peak'] - r['rss_import']) / mib:.0f}"]
        if len(names) > 1:
            if len(stats) == 2:
                (t0, m0), (t1, m1) = stats["minicnn"], stats["torch"]
                cells += [f"{t0 / t1:.2f}", f"{m0 / m1:.2f}"]
            else:
                cells += ["-", "-"]
        table.append(cells)
    print(f"\nModels (float32; {_clock_name(args)}; s/step = min of {repeat} steps after one warm-up, "
          f"in each of {args.rounds} "
          f"subprocess run(s) per model and framework, alternating; "
          f"peak = {'peak RSS during the steps' if steps_only else 'ru_maxrss'} (least of the runs), "
          f"work = peak - RSS after imports; 'x' = minicnn / torch)")
    _table(head, table)
    return out


# -- settings ------------------------------------------------------------------------------------
def describe_settings(frameworks, allocator="glibc's defaults"):
    """Lines stating everything the timings depend on: versions, threads, allocator, load."""
    import numba

    lines = [f"minicnn bench, {datetime.datetime.now().isoformat(timespec='seconds')} on {platform.node()}",
             f"CPU: {_cpu_name()}, {os.cpu_count()} logical CPUs; load average {_load()}",
             f"python {platform.python_version()}, numpy {np.__version__}, numba {numba.__version__}"]
    try:  # the threading layer is chosen when the first parallel kernel runs
        from minicnn.cpu import pooling
        pooling.max_pool2d_forward(np.zeros((1, 1, 4, 4), np.float32), 2, 2, 2, 2, 0, 0, 1, 1, 2, 2)
        layer = numba.threading_layer()
    except Exception as e:
        layer = f"unknown ({type(e).__name__})"
    lines.append(f"numba: {numba.get_num_threads()} threads (NUMBA_NUM_THREADS {numba.config.NUMBA_NUM_THREADS}), "
                 f"threading layer {layer}")
    lines.append("thread pools: " + _thread_pools())
    lines.append("convolutions: " + _batch_split())
    for fw in frameworks:
        if fw.name == "torch":
            t = fw.lib
            lines.append(f"torch {t.__version__}: {t.get_num_threads()} intra-op / {t.get_num_interop_threads()} "
                         f"inter-op threads, mkldnn {t.backends.mkldnn.is_available()}")
    lines.append("env: " + ", ".join(f"{v}={os.environ.get(v, 'unset')}" for v in ENV_VARS))
    lines.append(f"allocator: {allocator}")
    lines.append(f"import minicnn: {import_time():.3f} s (best of 3 fresh interpreters)")
    return lines


def keep_freed_memory():
    """Tell glibc to keep freed memory in the process: big blocks come from the heap instead of
    their own mappings (M_MMAP_MAX = 0) and the heap is never trimmed (M_TRIM_THRESHOLD at its
    maximum), so a block freed and allocated again is not page-faulted in again. Returns the
    header's description of the allocator."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return "the system's (no glibc mallopt here)"
    m_trim_threshold, m_mmap_max = -1, -4
    if not (mallopt(m_mmap_max, 0) and mallopt(m_trim_threshold, 2**31 - 1)):
        return "glibc's defaults (mallopt refused the settings)"
    return ("glibc keeps freed memory (mallopt M_MMAP_MAX=0, M_TRIM_THRESHOLD=2**31-1), in every "
            "process and for both frameworks")


def import_time(runs=3):
    """Seconds ``import minicnn`` takes in a fresh interpreter (the best of ``runs``)."""
    code = "import time; t = time.perf_counter(); import minicnn; print(time.perf_counter() - t)"
    best = math.inf
    for _ in range(runs):
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=_child_env(os.environ))
        if proc.returncode == 0:
            best = min(best, float(proc.stdout.split()[-1]))
    return best


def _thread_pools():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed (see the env line)"
    parts = []
    for info in threadpool_info():
        extra = "".join(f" {info[k]}" for k in ("version", "architecture") if info.get(k))
        parts.append(f"{info.get('internal_api')}{extra} {info.get('num_threads')} threads")
    return "; ".join(parts) or "none loaded"


def _batch_split():
    from minicnn.cpu import threads
    n = threads.blas_threads()
    if n is None:
        return "no batch split (NumPy's BLAS is not an OpenBLAS minicnn can set): BLAS-threaded GEMMs"
    if n < 2:
        return "no batch split (OpenBLAS has 1 thread)"
    return f"batch split over {n} threads, single-threaded OpenBLAS in each (minicnn/cpu/threads.py)"


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load():
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg()) + " (1, 5, 15 min)"
    except OSError:
        return "unknown"


def _frameworks(want_torch):
    frameworks = [_Minicnn()]
    if want_torch is False:
        return frameworks
    try:
        frameworks.append(_Torch())
    except ImportError:
        if want_torch:
            raise SystemExit("error: --torch given but PyTorch is not importable")
    return frameworks


def build_parser():
    p = argparse.ArgumentParser(
        description="CPU benchmarks of minicnn's layers and models, next to PyTorch's when torch is installed.",
        epilog="Timings are minima over repeats; the header states threads, allocator settings and the load.")
    p.add_argument("--quick", action="store_true", help="small shapes and models (a smoke run of a few seconds)")
    p.add_argument("--layers", action="store_true", help="the per-layer table (default: layers and models)")
    p.add_argument("--models", nargs="*", metavar="NAME",
                   help="the whole-model table (default: layers and models); names pick some of "
                        + ", ".join(m[0] for m in MODELS))
    g = p.add_mutually_exclusive_group()
    g.add_argument("--torch", dest="torch", action="store_true", default=None,
                   help="compare with PyTorch (default: when it is importable)")
    g.add_argument("--no-torch", dest="torch", action="store_false", help="minicnn only")
    p.add_argument("--repeat", type=int, default=None, metavar="N",
                   help="timed runs per measurement; the minimum is reported (default 5 for layers, 3 for "
                        "models; 2 and 1 with --quick)")
    p.add_argument("--rounds", type=int, default=None, metavar="N",
                   help="subprocess runs per model and framework, alternating between frameworks; the "
                        "minimum is reported (default 2; 1 with --quick)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="run with N threads in every pool (sets OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS and "
                        "reruns itself); default: as the environment says")
    p.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                   help="wall time (default), or the CPU time of the process: with --threads 1 the "
                        "measure least disturbed by other processes on a shared machine")
    p.add_argument("--malloc", choices=["keep", "system"], default="keep",
                   help="keep: glibc keeps freed memory in the process, so that neither framework's "
                        "calls page-fault in what the other's gave back (default); system: glibc's defaults")
    p.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    p.add_argument("--child", help=argparse.SUPPRESS)
    return p


def main(argv=None):
    global _clock
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.child:
        return _child(args.child)
    if args.threads is not None:
        if args.threads < 1:
            raise SystemExit("error: --threads must be at least 1")
        if any(os.environ.get(v) != str(args.threads) for v in THREAD_VARS):
            # thread pools are sized when their libraries load: run again in a fresh interpreter
            env = dict(os.environ, **{v: str(args.threads) for v in THREAD_VARS})
            return subprocess.run([sys.executable, "-m", "minicnn.apps.bench", *argv], env=_child_env(env)).returncode
    _clock = CLOCKS[args.clock]
    for flag in ("repeat", "rounds"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise SystemExit(f"error: --{flag} must be at least 1")
    args.rounds = args.rounds or (1 if args.quick else 2)
    if args.models:
        unknown = set(args.models) - {m[0] for m in MODELS}
        if unknown:
            raise SystemExit(f"error: unknown model(s) {', '.join(sorted(unknown))}; choose from "
                             + ", ".join(m[0] for m in MODELS))
    if not args.layers and args.models is None:
        args.layers, args.models = True, []
    from minicnn.backends import tune_cpu_threads
    tune_cpu_threads()  # the setting a training run opts into; the model children inherit it
    allocator = keep_freed_memory() if args.malloc == "keep" else "glibc's defaults (--malloc system)"
    frameworks = _frameworks(args.torch)
    settings = describe_settings(frameworks, allocator)
    print("\n".join(settings))
    out = {"settings": settings}
    repeat = args.repeat
    if args.layers:
        args.repeat = repeat or (2 if args.quick else 5)
        run_layers(args, frameworks, out)
    if args.models is not None:
        args.repeat = repeat or (1 if args.quick else 3)
        run_models(args, frameworks, out)
    print(f"\nload average at the end: {_load()}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
