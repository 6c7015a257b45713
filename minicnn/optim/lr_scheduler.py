"""Learning-rate schedules, with PyTorch's names, arguments and epoch counting.

A scheduler rewrites ``group["lr"]`` of its optimizer each time ``step()`` is
called (once per epoch, usually, after ``optimizer.step()``). Construction
counts as step 0: the optimizer's lr becomes the schedule's value at epoch 0.
Each schedule here is a closed form of ``last_epoch`` and the group's initial lr
(``base_lr``), so the value at any epoch is exact and a restored scheduler
continues bit for bit. Unlike PyTorch's chainable forms, two schedulers do not
compose by multiplying on one optimizer: use ``SequentialLR`` to run one after
another.

    t = last_epoch
    StepLR              base_lr * gamma ** (t // step_size)
    MultiStepLR         base_lr * gamma ** (number of milestones <= t)
    CosineAnnealingLR   eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2
    LinearLR            base_lr * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters)
    ExponentialLR       base_lr * gamma ** t
    LambdaLR            base_lr * lr_lambda(t)
    OneCycleLR          up from max_lr / div_factor to max_lr over pct_start of total_steps, then down to
                        that / final_div_factor (cosine or linear), momentum the other way; step per batch
    SequentialLR        schedulers[i] with its own epoch counter restarted at milestones[i - 1]

``ReduceLROnPlateau`` is the one that is not a function of the epoch: ``step(metric)``
multiplies the lr by ``factor`` once the metric has not improved for ``patience`` epochs.
"""
import bisect
import math

from .optimizer import Optimizer


class LRScheduler:
    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: {type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for g in optimizer.param_groups:
                g.setdefault("initial_lr", g["lr"])
        else:
            for i, g in enumerate(optimizer.param_groups):
                if "initial_lr" not in g:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when resuming "
                                   "a scheduler with last_epoch != -1")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr, epoch):
        """The learning rate this schedule gives a group whose initial lr is ``base_lr``."""
        raise NotImplementedError

    def get_lr(self):
        return [self.lr_at(b, self.last_epoch) for b in self.base_lrs]

    def step(self):
        self.last_epoch += 1
        self._apply(self.get_lr())

    def _apply(self, lrs):
        for g, lr in zip(self.optimizer.param_groups, lrs):
            g["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self):
        """The learning rates set by the last ``step`` (one per parameter group)."""
        return self._last_lr

    def state_dict(self):
        """Every attribute but the optimizer (PyTorch's layout)."""
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        for k, v in state_dict.items():
            self.__dict__[k] = _plain(v)


def _plain(v):
    """Saved values back as Python numbers and lists (a file may return 0-d arrays)."""
    if hasattr(v, "ndim") and hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, tuple):
        return list(v)
    return v


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        if int(step_size) != step_size or step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive integer, got {step_size!r}")
        self.step_size, self.gamma = int(step_size), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        return base_lr * self.gamma ** (t // self.step_size)


class MultiStepLR(LRScheduler):
    """Multiply the lr by ``gamma`` at each epoch listed in ``milestones``."""

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones, self.gamma = sorted(int(m) for m in milestones), gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        return base_lr * self.gamma ** bisect.bisect_right(self.milestones, t)


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from the initial lr down to ``eta_min`` over ``T_max`` epochs (SGDR without restarts)."""

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max!r}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2


class LinearLR(LRScheduler):
    """Scale the lr by a factor that moves linearly from ``start_factor`` to ``end_factor``
    over ``total_iters`` epochs, then stays; with the defaults, a linear warm-up."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1], got "
                             f"{start_factor!r} and {end_factor!r}")
        if total_iters < 1:
            raise ValueError(f"LinearLR: total_iters must be >= 1, got {total_iters!r}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, int(total_iters)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        frac = min(t, self.total_iters) / self.total_iters
        return base_lr * (self.start_factor + (self.end_factor - self.start_factor) * frac)


class SequentialLR(LRScheduler):
    """Run ``schedulers[0]`` until epoch ``milestones[0]``, then ``schedulers[1]`` from its epoch 0, ...

    Warm-up then cosine decay, as in PyTorch::

        warm = LinearLR(opt, start_factor=0.1, total_iters=5)
        cos = CosineAnnealingLR(opt, T_max=95)
        sched = SequentialLR(opt, [warm, cos], milestones=[5])
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expected {len(schedulers) - 1} milestones for {len(schedulers)} "
                             f"schedulers, got {len(milestones)}")
        if any(s.optimizer is not optimizer for s in schedulers):
            raise ValueError("SequentialLR: every scheduler must belong to the same optimizer as SequentialLR")
        self._schedulers, self._milestones = list(schedulers), [int(m) for m in milestones]
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        i = bisect.bisect_right(self._milestones, self.last_epoch)
        sched = self._schedulers[i]
        sched.last_epoch = self.last_epoch - (self._milestones[i - 1] if i > 0 else 0)
        return sched.get_lr()

    def state_dict(self):
        state = super().state_dict()
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        state = dict(state_dict)
        inner = state.pop("_schedulers")
        super().load_state_dict(state)
        for s, sd in zip(self._schedulers, inner):
            s.load_state_dict(sd)


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every epoch."""

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr, t):
        return base_lr * self.gamma ** t


class LambdaLR(LRScheduler):
    """lr = initial lr * ``lr_lambda(epoch)``; one function, or one per parameter group.
    (Its state_dict leaves the functions out, as PyTorch's does for lambdas.)"""

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        groups = len(optimizer.param_groups)
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * groups
        if len(lambdas) != groups:
            raise ValueError(f"LambdaLR: expected {groups} lr_lambdas (one per parameter group), got {len(lambdas)}")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        return [b * f(self.last_epoch) for b, f in zip(self.base_lrs, self.lr_lambdas)]

    def state_dict(self):
        return {k: v for k, v in super().state_dict().items() if k != "lr_lambdas"}


class OneCycleLR(LRScheduler):
    """Smith's 1cycle policy, stepped after every batch, with PyTorch's arguments: the lr rises from
    max_lr / div_factor to ``max_lr`` over the first ``pct_start`` of ``total_steps`` (or ``epochs``
    x ``steps_per_epoch``), then falls to max_lr / (div_factor * final_div_factor); the momentum
    (SGD's ``momentum``, Adam's first beta) moves the other way between max_ and base_momentum.
    ``three_phase``: up, back down to the start over as many steps, then the final fall."""

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None, pct_start=0.3,
                 anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, last_epoch=-1):
        if total_steps is None:
            if not epochs or not steps_per_epoch or epochs < 1 or steps_per_epoch < 1:
                raise ValueError("OneCycleLR: give total_steps, or positive epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if total_steps < 1 or not 0 <= pct_start <= 1 or anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: total_steps must be >= 1, pct_start in [0, 1] and anneal_strategy "
                             f"'cos' or 'linear', got {total_steps!r}, {pct_start!r}, {anneal_strategy!r}")
        self.total_steps, self.anneal_strategy, self.cycle_momentum = int(total_steps), anneal_strategy, cycle_momentum
        up = float(pct_start * total_steps) - 1
        # (last step of the phase, what it starts from, where it ends): "initial", "max", "min" lrs
        self.phases = ([(up, "initial", "max"), (2 * up, "max", "initial"), (total_steps - 1, "initial", "min")]
                       if three_phase else [(up, "initial", "max"), (total_steps - 1, "max", "min")])
        max_lrs = list(max_lr) if isinstance(max_lr, (list, tuple)) else [max_lr] * len(optimizer.param_groups)
        for g, top in zip(optimizer.param_groups, max_lrs):
            if last_epoch == -1:
                g["initial_lr"], g["max_lr"] = top / div_factor, top
                g["min_lr"] = g["initial_lr"] / final_div_factor
            if cycle_momentum:
                if "momentum" not in g and "betas" not in g:
                    raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with momentum or betas")
                g["max_momentum"], g["base_momentum"] = max_momentum, base_momentum
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start, end, pct):
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _at(self, values, step):
        """(values[start], values[end]) of ``step``'s phase, annealed to ``step``."""
        begin = 0.0
        for i, (end_step, a, b) in enumerate(self.phases):
            if step <= end_step or i == len(self.phases) - 1:
                pct = (step - begin) / (end_step - begin) if end_step > begin else 1.0
                return self._anneal(values[a], values[b], pct)
            begin = end_step
        raise AssertionError("unreachable")

    def get_lr(self):
        step = self.last_epoch
        if step >= self.total_steps:
            raise ValueError(f"OneCycleLR: stepped {step + 1} times, but total_steps is {self.total_steps}")
        lrs = []
        for g in self.optimizer.param_groups:
            lrs.append(self._at({"initial": g["initial_lr"], "max": g["max_lr"], "min": g["min_lr"]}, step))
            if self.cycle_momentum:  # high momentum while the lr is low, and the other way round
                m = self._at({"initial": g["max_momentum"], "max": g["base_momentum"], "min": g["max_momentum"]}, step)
                if "betas" in g:
                    g["betas"] = (m, *tuple(g["betas"])[1:])
                else:
                    g["momentum"] = m
        return lrs


class ReduceLROnPlateau:
    """Multiply the lr by ``factor`` (not below ``min_lr``) once ``step(metric)`` has seen no
    improvement for ``patience`` epochs, then wait ``cooldown`` epochs; as PyTorch's. ``mode``
    "min" (a loss) or "max" (an accuracy); improvement beyond ``threshold``, relative ("rel") or
    absolute ("abs")."""

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4, threshold_mode="rel",
                 cooldown=0, min_lr=0, eps=1e-8):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"ReduceLROnPlateau: {type(optimizer).__name__} is not an Optimizer")
        if factor >= 1.0 or mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: factor must be < 1, mode 'min' or 'max', threshold_mode 'rel' or "
                             f"'abs'; got {factor!r}, {mode!r}, {threshold_mode!r}")
        self.optimizer, self.mode, self.factor, self.patience = optimizer, mode, factor, patience
        self.threshold, self.threshold_mode, self.cooldown, self.eps = threshold, threshold_mode, cooldown, eps
        self.min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * len(optimizer.param_groups)
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs, self.cooldown_counter, self.last_epoch = 0, 0, 0
        self._last_lr = [g["lr"] for g in optimizer.param_groups]

    def _better(self, a):
        if self.threshold_mode == "rel":  # PyTorch's rule, also for a negative best
            return a < self.best * (1 - self.threshold) if self.mode == "min" else a > self.best * (1 + self.threshold)
        return a < self.best - self.threshold if self.mode == "min" else a > self.best + self.threshold

    def step(self, metrics):
        current = float(metrics)
        self.last_epoch += 1
        if self._better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for g, low in zip(self.optimizer.param_groups, self.min_lrs):
                new = max(g["lr"] * self.factor, low)
                if g["lr"] - new > self.eps:
                    g["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0
        self._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def get_last_lr(self):
        return self._last_lr

    def state_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict):
        self.__dict__.update({k: _plain(v) for k, v in state_dict.items()})
