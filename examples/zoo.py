"""Tour of the model zoo: parameters and GMACs of every architecture next to the published
figures, the time of one forward pass on this machine, and how many images of that size a
training step could hold in a GPU of a given memory (by ``summary``'s estimate).

    python examples/zoo.py                          # every model, with timing
    python examples/zoo.py --no-time                # counts only (each model still runs once)
    python examples/zoo.py --models resnet18,enet   # a selection
    python examples/zoo.py --summary resnet18       # the full layer table of one model
    python examples/zoo.py --memory 80 --optimizer sgd

Timing: one image, eval mode, ``mc.no_grad()``, measured after the summary pass has warmed up
caches and compiled kernels; expect noise of tens of percent on a busy machine.
"""
import argparse
import time

import numpy as np

import minicnn as mc
import minicnn.models as models
from minicnn.summary import OPTIMIZER_SLOTS, summary


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(models.REFERENCE),
                   help="comma-separated names (default: every model with a reference figure)")
    p.add_argument("--no-time", action="store_true", help="skip the timed forward pass")
    p.add_argument("--memory", type=float, default=16.0, help="GPU memory in GiB for the batch column")
    p.add_argument("--optimizer", default="adam", choices=sorted(OPTIMIZER_SLOTS),
                   help="optimizer whose state the memory estimate includes")
    p.add_argument("--summary", metavar="NAME", help="print the layer table of one model and exit")
    return p.parse_args()


def build(name):
    """The model with the arguments and input size of its reference row."""
    kwargs, size, params, gmacs, source = models.REFERENCE.get(name, ({}, (3, 224, 224), None, None, ""))
    return models.get_model(name, **kwargs), size, params, gmacs, source


def main():
    args = parse_args()
    if args.summary:
        net, size, *_ = build(args.summary)
        print(summary(net, size, optimizer=args.optimizer))
        return
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = [n for n in names if n not in models.list_models()]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; choose from {models.list_models()}")

    head = (f"{'model':<19} {'input':<11} {'params':>13} {'reference':>13}  {'GMACs':>8} {'ref':>8}"
            f"  {'fwd [s]':>7}  {f'batch@{args.memory:g}GiB':>12}  source")
    print(head)
    print("-" * len(head))
    for name in names:
        mc.manual_seed(0)
        net, size, ref_params, ref_gmacs, source = build(name)
        s = summary(net, size, optimizer=args.optimizer)
        seconds = "-"
        if not args.no_time:
            x = mc.tensor(np.random.default_rng(0).standard_normal((1, *size)).astype(np.float32))
            net.eval()
            with mc.no_grad():
                t0 = time.perf_counter()
                net(x)
                seconds = f"{time.perf_counter() - t0:.2f}"
        mark = "" if ref_params is None else (" " if s.total_params == ref_params else "!")
        print(f"{name:<19} {'x'.join(map(str, size)):<11} {s.total_params:>13,}"
              f"{mark}{'' if ref_params is None else f'{ref_params:,}':>13}  {s.gmacs:>8.3f}"
              f" {'' if ref_gmacs is None else f'{ref_gmacs:.3f}':>8}  {seconds:>7}"
              f"  {s.max_batch_size(args.memory):>12,}  {source}", flush=True)
        del net
    print(f"\nparams marked '!' differ from the reference; GMACs count conv and linear "
          f"multiply-accumulates per image;\nthe batch column is summary()'s training-step estimate "
          f"(activations + parameters + gradients + {args.optimizer} state).")


if __name__ == "__main__":
    main()
