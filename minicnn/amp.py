"""Mixed precision's API (``torch.autocast``, ``torch.amp.GradScaler``), so that scripts written
for it run.

``autocast`` runs its block as it is: minicnn computes in the tensors' own dtype (float32 or
float64) on both devices, without casting ops to float16. ``GradScaler`` is the real loss
scaling (which float32 does not need, but does no harm): ``scale(loss)`` multiplies the loss,
``step(optimizer)`` divides the gradients back and skips the step when one of them is inf or
nan, ``update()`` halves the scale after such a step and doubles it after ``growth_interval``
good ones.
"""
import contextlib

from .autograd import no_grad
from .tensor import Tensor


@contextlib.contextmanager
def autocast(device_type="cuda", dtype=None, enabled=True, cache_enabled=None):
    """Accepted and run as is: ops keep their inputs' dtype (see the module docstring)."""
    yield


class GradScaler:
    def __init__(self, device="cuda", init_scale=2.0 ** 16, growth_factor=2.0, backoff_factor=0.5,
                 growth_interval=2000, enabled=True):
        if not (growth_factor > 1 and 0 < backoff_factor < 1 and growth_interval >= 1):
            raise ValueError("GradScaler: growth_factor must be > 1, backoff_factor in (0, 1), growth_interval >= 1")
        self.enabled, self._scale = enabled, float(init_scale)
        self.growth_factor, self.backoff_factor, self.growth_interval = growth_factor, backoff_factor, growth_interval
        self._growth_tracker, self._unscaled, self._found_inf = 0, set(), False

    def get_scale(self):
        return self._scale if self.enabled else 1.0

    def is_enabled(self):
        return self.enabled

    def scale(self, outputs):
        """``outputs`` (a Tensor or a nesting of them) times the current scale."""
        if not self.enabled:
            return outputs
        if isinstance(outputs, Tensor):
            return outputs * self._scale
        return type(outputs)(self.scale(o) for o in outputs)

    def unscale_(self, optimizer):
        """Divide the optimizer's gradients by the scale (once per step) and note any inf/nan."""
        if not self.enabled or id(optimizer) in self._unscaled:
            return
        with no_grad():
            for group in optimizer.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        g = p.grad.array / p.grad.array.dtype.type(self._scale)
                        self._found_inf |= not bool((abs(g) < float("inf")).all())
                        p.grad = Tensor._make(g)
        self._unscaled.add(id(optimizer))

    def step(self, optimizer, *args, **kwargs):
        """``optimizer.step()`` with unscaled gradients, skipped when one of them is not finite."""
        if not self.enabled:
            return optimizer.step(*args, **kwargs)
        self.unscale_(optimizer)
        return None if self._found_inf else optimizer.step(*args, **kwargs)

    def update(self, new_scale=None):
        if not self.enabled:
            return
        if new_scale is not None:
            self._scale = float(new_scale)
        elif self._found_inf:
            self._scale *= self.backoff_factor
            self._growth_tracker = 0
        else:
            self._growth_tracker += 1
            if self._growth_tracker == self.growth_interval:
                self._scale *= self.growth_factor
                self._growth_tracker = 0
        self._unscaled, self._found_inf = set(), False

    def state_dict(self):
        return {"scale": self._scale, "growth_factor": self.growth_factor, "backoff_factor": self.backoff_factor,
                "growth_interval": self.growth_interval, "_growth_tracker": self._growth_tracker}

    def load_state_dict(self, state):
        self._scale, self._growth_tracker = float(state["scale"]), int(state["_growth_tracker"])
