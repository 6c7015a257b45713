"""``mc.gradcheck`` itself: it passes right gradients, catches wrong ones (naming the worst
element with both values), warns about float32, has a fast mode, and leaves its inputs
and their gradients untouched."""
import warnings

import numpy as np
import pytest

import minicnn as mc
from minicnn.autograd import Function
from minicnn.gradcheck import GradcheckError, compare_gradients


class ScaledSquare(Function):
    """y = x^2 with a backward that is wrong by ``error`` at flat position ``at``."""

    def __init__(self, error=0.0, at=0):
        self.error, self.at = error, at

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, gy):
        g = 2 * self.x * gy
        g.reshape(-1)[self.at] += self.error
        return g


def x64(*shape, seed=0):
    rng = np.random.default_rng(seed)
    return mc.tensor(rng.standard_normal(shape), requires_grad=True)


def test_passes_for_correct_gradients_with_several_inputs_and_outputs():
    a, b = x64(3, 4), x64(4, seed=1)
    c = mc.tensor(np.ones(4))  # a constant input (no requires_grad) is passed through

    def f(a, b, c, k):
        return (a * b).tanh() * k, (a @ (b + c)).exp(), mc.argmax(a)

    assert mc.gradcheck(f, [a, b, c, 2.0])
    assert mc.gradcheck(f, [a, b, c, 2.0], fast_mode=True)


def test_reports_the_worst_element_with_both_values():
    x = x64(2, 3)
    with pytest.raises(GradcheckError) as info:
        mc.gradcheck(lambda t: ScaledSquare(error=0.5, at=4).apply(t), [x])
    msg = str(info.value)
    assert "input 0 (shape (2, 3))" in msg and "element (1, 1)" in msg and "1 of 6 values off" in msg
    # the reported values are the analytic and numeric gradients at that element
    [(_, analytic, numeric)] = compare_gradients(lambda t: ScaledSquare(error=0.5, at=4).apply(t), [x])
    assert f"analytic {analytic[1, 1]:.10g}, numeric {numeric[1, 1]:.10g}" in msg
    assert analytic[1, 1] - numeric[1, 1] == pytest.approx(0.5, abs=1e-6)


def test_small_errors_pass_only_within_tolerance():
    x = x64(5)
    assert mc.gradcheck(lambda t: ScaledSquare(error=5e-6).apply(t), [x])
    with pytest.raises(GradcheckError):
        mc.gradcheck(lambda t: ScaledSquare(error=5e-6).apply(t), [x], atol=1e-7, rtol=0)


def test_fast_mode_catches_a_wrong_gradient():
    x = x64(20, 10)
    with pytest.raises(GradcheckError, match="the random direction"):
        mc.gradcheck(lambda t: ScaledSquare(error=1.0, at=123).apply(t), [x], fast_mode=True)


def test_nan_gradients_fail():
    x = x64(3)
    with pytest.raises(GradcheckError):
        mc.gradcheck(lambda t: ScaledSquare(error=np.nan).apply(t), [x])


def test_warns_when_inputs_are_not_float64():
    x = mc.tensor([1.0, 2.0], requires_grad=True)
    with pytest.warns(UserWarning, match="not float64"):
        mc.gradcheck(lambda t: t * 2, [x], eps=1e-2, atol=1e-3, rtol=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mc.gradcheck(lambda t: t * 2, [x64(2)])


def test_leaves_inputs_and_grads_untouched():
    x, y = x64(3, 2), x64(2, seed=1)
    x.grad = mc.tensor(np.full((3, 2), 7.0))
    data_x, data_y, before = x.array, y.array, x.numpy().copy()
    mc.gradcheck(lambda a, b: (a * b).sum(1), [x, y])
    mc.gradcheck(lambda a, b: (a * b).sum(1), [x, y], fast_mode=True)
    assert x.array is data_x and y.array is data_y
    np.testing.assert_array_equal(x.numpy(), before)
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 2), 7.0))
    assert y.grad is None


def test_restores_inputs_when_fn_fails_midway():
    x = x64(4)
    before = x.numpy().copy()
    calls = []

    def flaky(t):
        calls.append(1)
        if len(calls) == 3:
            raise ValueError("boom")
        return t * 2

    with pytest.raises(ValueError, match="boom"):
        mc.gradcheck(flaky, [x])
    np.testing.assert_array_equal(x.numpy(), before)
    assert x.grad is None


def test_non_contiguous_input_is_checked_and_kept():
    base = mc.tensor(np.random.default_rng(0).standard_normal((4, 3)))
    x = mc.tensor(np.zeros((3, 4)), requires_grad=True)
    x.array = base.array.T  # an F-ordered view of another array
    assert not x.array.flags.c_contiguous
    assert mc.gradcheck(lambda t: (t @ t.T).tanh(), [x])
    assert x.array.base is base.array


def test_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="no input has requires_grad=True"):
        mc.gradcheck(lambda t: t * 2, [mc.tensor(np.ones(2))])


def test_a_wrong_gradient_dtype_is_reported():
    class Wrong(Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy * 2

    # the engine itself refuses a float32 gradient for a float64 input
    class WrongDtype(Wrong):
        def backward(self, gy):
            return (gy * 2).astype(np.float32)

    assert mc.gradcheck(lambda t: Wrong().apply(t), [x64(2)])
    with pytest.raises(RuntimeError, match="dtype float32 for an input of shape \\(2,\\) and dtype float64"):
        mc.gradcheck(lambda t: WrongDtype().apply(t), [x64(2)])


# --- the gradient-check tour (minicnn/apps/gradcheck_tour.py) ----------------------------
def test_tour_checks_every_case_and_all_pass():
    from minicnn.apps import gradcheck_tour as tour

    rows = tour.run_tour()
    assert len(rows) == len(tour.cases()) >= 70
    failed = [(r["op"], r["case"], r["max_rel_error"]) for r in rows if not r["passed"]]
    assert not failed
    assert max(r["max_rel_error"] for r in rows) < 1e-6
    for op in ("conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "max_unpool2d",
               "batch_norm", "local_response_norm", "dropout", "prelu", "interpolate", "cross_entropy", "linear"):
        assert op in tour.op_names()


def test_tour_cli_filters_and_summarises(capsys):
    from minicnn.apps import gradcheck_tour as tour

    result = tour.main(["relu", "max*"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "passed=5/5" and result["passed"] == result["total"] == 5
    assert lines[0].startswith("op (case)") and "max rel. error" in lines[0]
    assert [ln.split()[0] for ln in lines[2:-1]] == ["max", "relu", "max_pool2d", "max_pool2d", "max_unpool2d"]
    assert all(float(ln.split()[-2]) < 1e-6 and ln.endswith("yes") for ln in lines[2:-1])
    with pytest.raises(SystemExit) as info:
        tour.main(["--help"])
    assert info.value.code == 0 and "gradient-check tour" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no op named 'nope'; the tour has: abs, "):
        tour.main(["nope"])


def test_tour_reports_a_wrong_gradient(capsys, monkeypatch):
    from minicnn.apps import gradcheck_tour as tour

    broken = [("square", "wrong by 0.5", lambda r: (lambda t: ScaledSquare(error=0.5).apply(t),
                                                     [mc.tensor(r.standard_normal(3), requires_grad=True)]))]
    monkeypatch.setattr(tour, "cases", lambda: broken)
    with pytest.raises(SystemExit) as info:
        tour.main([])
    out = capsys.readouterr().out.strip().splitlines()
    assert info.value.code == 1 and out[-1] == "passed=0/1" and out[-2].endswith("NO")
