"""The engine in thirty lines: a two-layer network learns two interleaved spirals
with nothing but tensors, autograd and a hand-written gradient step.

    python examples/quickstart.py            # 1500 full-batch steps, about a second
"""
import argparse

import numpy as np

import minicnn as mc
import minicnn.nn as nn
import minicnn.nn.functional as F


def spirals(n, rng):
    """Two spirals of n points each: x (2n, 2) float32, y (2n,) int64."""
    t = np.sqrt(rng.random(n)) * 3 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], 1) / (3 * np.pi)
    x = np.concatenate([arm, -arm]) + rng.normal(0, 0.02, (2 * n, 2))
    return x.astype(np.float32), np.repeat([0, 1], n)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1500, help="(default: %(default)s)")
    p.add_argument("--lr", type=float, default=1.0, help="(default: %(default)s)")
    args = p.parse_args(argv)
    mc.manual_seed(0)
    x, y = spirals(200, np.random.default_rng(0))
    model = nn.Sequential(nn.Linear(2, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 2))
    xt, onehot = mc.tensor(x), mc.tensor(np.eye(2, dtype=np.float32)[y])
    for step in range(args.steps):
        loss = -(F.log_softmax(model(xt), 1) * onehot).sum(1).mean()
        model.zero_grad()
        loss.backward()
        for w in model.parameters():
            w.data.sub_(args.lr * w.grad)  # plain gradient descent, outside the graph
        if step % 250 == 0:
            print(f"step {step:4d}  loss {loss.item():.4f}")
    acc = (model(xt).numpy().argmax(1) == y).mean()
    print(f"train_accuracy={acc:.3f}")


if __name__ == "__main__":
    main()
