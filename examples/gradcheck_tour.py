"""Prove a layer right: write an op's forward and backward, then let finite differences check it.

    python examples/gradcheck_tour.py

For inputs x (float64) and a random upstream gradient v, L = sum(op(x) * v) is one number.
Backward gives dL/dx analytically; central differences give every element numerically,

    dL/dx_i ~ (L(x + eps e_i) - L(x - eps e_i)) / (2 eps),

and ``mc.gradcheck`` compares the two (True, or an error naming the worst element). The
program checks a hand-written op (the "swish" x * sigmoid(x)), shows the check catching a
wrong backward, then checks minicnn's convolution, pooling and normalisation layers.
(``minicnn gradcheck`` runs the same check over every op of the library.)
"""
import numpy as np

import minicnn as mc
import minicnn.nn.functional as F


class Swish(mc.Function):
    """y = x * sigmoid(x); dy/dx = s + x * s * (1 - s) with s = sigmoid(x). Shapes: any -> same."""

    def forward(self, x):
        self.x, self.s = x, 1 / (1 + self.xp.exp(-x))  # xp: NumPy or CuPy, as x
        return x * self.s

    def backward(self, gy):
        s = self.s
        return gy * (s + self.x * s * (1 - s))


class WrongSwish(Swish):
    """The same forward with a classic mistake in backward: the x * s * (1 - s) term forgotten."""

    def backward(self, gy):
        return gy * self.s


def check(name, fn, *inputs):
    try:
        mc.gradcheck(fn, list(inputs))
        print(f"{name:28s} ok")
    except mc.GradcheckError as e:
        print(f"{name:28s} WRONG: {str(e).splitlines()[0]}")
        return False
    return True


def leaf(rng, *shape):
    return mc.tensor(rng.standard_normal(shape), requires_grad=True)


def main():
    rng = np.random.default_rng(0)
    mc.manual_seed(0)
    x = leaf(rng, 3, 4)
    results = [check("swish (hand-written)", lambda a: Swish().apply(a), x)]
    caught = not check("swish, wrong backward", lambda a: WrongSwish().apply(a), x)
    print("  -> the check caught the wrong backward" if caught else "  -> the wrong backward went unnoticed!")

    img, w, b = leaf(rng, 2, 3, 7, 7), leaf(rng, 4, 3, 3, 3), leaf(rng, 4)
    results += [
        check("conv2d 3x3, stride 2, pad 1", lambda a, k, c: F.conv2d(a, k, c, stride=2, padding=1), img, w, b),
        check("conv2d depthwise, dilation 2", lambda a, k: F.conv2d(a, k, padding=2, dilation=2, groups=3),
              img, leaf(rng, 3, 1, 3, 3)),
        check("conv_transpose2d stride 2", lambda a, k: F.conv_transpose2d(a, k, stride=2), img, leaf(rng, 3, 2, 2, 2)),
        check("max_pool2d 3x3/2", lambda a: F.max_pool2d(a, 3, 2, padding=1), img),
        check("avg_pool2d 2x2", lambda a: F.avg_pool2d(a, 2), img),
        check("batch_norm (training)", lambda a, g, h: F.batch_norm(a, None, None, g, h, training=True),
              img, leaf(rng, 3), leaf(rng, 3)),
        check("local_response_norm size 3", lambda a: F.local_response_norm(a, 3), img),
        check("cross_entropy", lambda z: F.cross_entropy(z, mc.tensor(np.array([0, 2, 1]))), leaf(rng, 3, 4)),
    ]
    print(f"passed={sum(results)}/{len(results)}")
    return caught and all(results)


if __name__ == "__main__":
    raise SystemExit(0 if main() else 1)
