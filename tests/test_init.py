"""nn.init: values drawn in the tensor's own dtype, with the right distributions, reproducibly."""
import math
import tracemalloc

import numpy as np
import pytest

import minicnn as mc
from minicnn import nn
from minicnn.nn import init

FILLS = [
    (lambda t: init.uniform_(t, -0.5, 1.5), 0.5, 2 / math.sqrt(12)),
    (lambda t: init.normal_(t, 0.25, 2.0), 0.25, 2.0),
    (lambda t: init.kaiming_normal_(t, mode="fan_in", nonlinearity="relu"), 0.0, math.sqrt(2 / 500)),
    (lambda t: init.kaiming_uniform_(t, a=math.sqrt(5)), 0.0, 1 / math.sqrt(500) / math.sqrt(3)),  # bound 1/sqrt(fan_in)
    (lambda t: init.xavier_normal_(t), 0.0, math.sqrt(2 / 900)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", range(len(FILLS)))
def test_draws_keep_dtype_and_moments(k, dtype):
    fill, mean, std = FILLS[k]
    t = nn.Parameter(np.empty((400, 500), dtype))
    mc.manual_seed(1)
    fill(t)
    v = t.numpy()
    assert v.dtype == dtype and v.shape == (400, 500)
    assert abs(v.mean() - mean) < 0.02 * std + 1e-12 and abs(v.std() - std) < 0.02 * std
    mc.manual_seed(1)
    fill(t)
    np.testing.assert_array_equal(t.numpy(), v)  # manual_seed repeats it


def test_uniform_bounds_and_trunc_normal():
    mc.manual_seed(2)
    t = nn.Parameter(np.empty((300, 300), np.float32))
    init.uniform_(t, -0.1, 0.3)
    assert t.numpy().min() >= -0.1 and t.numpy().max() <= np.float32(0.3) and t.numpy().max() > 0.29
    init.trunc_normal_(t, mean=1.0, std=1.0, a=0.5, b=1.25)
    v = t.numpy()
    assert v.dtype == np.float32 and v.min() >= 0.5 and v.max() <= 1.25 and v.max() > 1.24
    init.constant_(t, 0.1)
    assert t.numpy().dtype == np.float32 and np.all(t.numpy() == np.float32(0.1))


def test_float32_draws_make_no_float64_temporaries():
    t = nn.Parameter(np.empty((1000, 1000), np.float32))
    for fill in (init.uniform_, init.normal_, lambda t: init.constant_(t, 1.0)):
        tracemalloc.start()
        fill(t)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 5e6, peak  # one float32 array (4 MB); a float64 one would be 8 MB
