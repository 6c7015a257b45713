"""The CPU's ReLU forward kernel (minicnn.cpu.elementwise) and the op using it."""
import numpy as np
import pytest

import minicnn as mc
import minicnn.nn.functional as F
from minicnn import tuning
from minicnn.cpu import elementwise as ew

# NumPy's path, the one-thread loop and the multi-threaded loop
SIZES = [(3, 5), (2, 3, 7, 6), (tuning.ELEMENTWISE_MIN_SIZE + 7,), (tuning.ELEMENTWISE_PARALLEL_MIN_SIZE + 7,), (8, 64, 47, 51)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SIZES)
def test_relu_matches_numpy(shape, dtype):
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    x.flat[:4] = [np.nan, -0.0, 0.0, -np.inf]
    y = ew.relu(x)
    assert y.dtype == dtype and y.shape == shape and y is not x
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    assert np.isnan(y.flat[0]) and not np.signbit(y.flat[1])  # NaN stays, -0.0 becomes +0.0


def test_other_arrays_take_numpys_path():
    n = tuning.ELEMENTWISE_PARALLEL_MIN_SIZE
    a = np.arange(2 * n, dtype=np.float32).reshape(2, n) - n
    np.testing.assert_array_equal(ew.relu(a.T), np.maximum(a.T, 0))  # not C-contiguous
    np.testing.assert_array_equal(ew.relu(a[:, ::2]), np.maximum(a[:, ::2], 0))
    assert ew.relu(np.arange(-n, n)).dtype == np.int64
    assert ew.relu(np.array(-2.0, np.float32)).shape == ()


@pytest.mark.parametrize("shape", [(2, 3, 4), (4, 8, 180, 183)])
def test_relu_op_forward_backward(shape):
    rng = np.random.default_rng(2)
    x = mc.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
    y = F.relu(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.array, np.maximum(x.array, 0))
    gy = rng.standard_normal(shape).astype(np.float32)
    y.backward(mc.tensor(gy))
    np.testing.assert_array_equal(x.grad.array, np.where(x.array > 0, gy, 0))


def test_gradcheck_relu():
    rng = np.random.default_rng(3)
    # float64, away from the kink at 0; 4096 elements take the numba loop
    a = rng.uniform(0.1, 1.0, (4, 32, 32)) * rng.choice([-1, 1], (4, 32, 32))
    x = mc.tensor(a, requires_grad=True)
    assert mc.gradcheck(lambda x: F.relu(x) * x, (x,), fast_mode=True)
