"""Evaluation metrics for classification and segmentation, on host NumPy arrays.

Functions take predictions/targets as NumPy arrays, CuPy arrays or Tensors:

    accuracy(logits, target)            fraction of argmax(logits) == target
    topk_accuracy(logits, target, k)    fraction whose target is among the k largest logits
    confusion_matrix(pred, target, C)   M[i, j] = number of samples of true class i predicted as j
    iou_per_class(M)                    IoU_c = M[c,c] / (row_c + col_c - M[c,c])   (TP / (TP + FP + FN))
    dice_per_class(M)                   Dice_c = 2 M[c,c] / (row_c + col_c)         (2 TP / (2 TP + FP + FN))
    mean_iou(M)                         mean of IoU_c over the classes that occur in target or prediction

The classes ``Accuracy``, ``TopKAccuracy`` and ``SegmentationMetrics`` accumulate
over batches (``update(output, target)``, ``compute() -> dict``, ``reset()``); the
trainer uses them.
"""
import numpy as np

from . import backend
from .tensor import Tensor


def _host(x):
    return backend.to_numpy(x.array if isinstance(x, Tensor) else x)


def _labels(output, target):
    """(predicted labels, target labels): output is logits (N, C, ...) or labels shaped like target."""
    output, target = _host(output), _host(target)
    pred = output if output.shape == target.shape else output.argmax(1)
    if pred.shape != target.shape:
        raise ValueError(f"metrics: output of shape {output.shape} does not match target of shape {target.shape} "
                         "(expected logits (N, C, ...) or labels shaped like the target)")
    return pred, target


def accuracy(output, target):
    """Fraction of samples (or pixels) whose predicted class equals the target."""
    pred, target = _labels(output, target)
    return float((pred == target).mean()) if target.size else float("nan")


def topk_accuracy(output, target, k=5):
    """Fraction of samples whose target class is among the ``k`` highest scores of ``output`` (N, C)."""
    hits = _topk_hits(output, target, k)
    return float(hits.mean()) if hits.size else float("nan")


def _topk_hits(output, target, k):
    output, target = _host(output), _host(target)
    if output.ndim != 2 or target.shape != output.shape[:1]:
        raise ValueError(f"topk_accuracy: expected output (N, C) and target (N,), got {output.shape} and {target.shape}")
    k = min(k, output.shape[1])
    topk = np.argpartition(-output, k - 1, axis=1)[:, :k]
    return (topk == target[:, None]).any(1)


def confusion_matrix(pred, target, num_classes, ignore_index=None):
    """``M`` (C, C) int64 with ``M[t, p]`` = count of elements of true class t predicted as p.

    ``pred`` and ``target`` are label arrays of the same shape; elements whose target is
    ``ignore_index`` are skipped. Labels outside [0, C) raise a ValueError.
    """
    pred, target = _host(pred).ravel(), _host(target).ravel()
    if pred.shape != target.shape:
        raise ValueError(f"confusion_matrix: pred has {pred.size} elements but target has {target.size}")
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    for name, a in (("pred", pred), ("target", target)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} has labels in [{a.min()}, {a.max()}], outside "
                             f"[0, {num_classes}) for num_classes={num_classes}")
    idx = target.astype(np.int64) * num_classes + pred.astype(np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(conf):
    """Intersection over union per class from a confusion matrix; nan for a class absent from both."""
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def dice_per_class(conf):
    """Dice coefficient (F1) per class from a confusion matrix; nan for a class absent from both."""
    conf = np.asarray(conf, dtype=np.float64)
    tp = np.diag(conf)
    denom = conf.sum(0) + conf.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 2 * tp / denom, np.nan)


def mean_iou(conf):
    """Mean IoU over the classes present in the target or the prediction."""
    iou = iou_per_class(conf)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


# -- accumulating metrics (for the trainer) ----------------------------------------


class Metric:
    """Accumulates over batches: ``update(output, target)``, then ``compute()`` -> {name: float}.

    ``log_keys``: the results worth a place in a one-line epoch summary (None: all of them).
    """

    log_keys = None

    def reset(self):
        raise NotImplementedError

    def update(self, output, target):
        raise NotImplementedError

    def compute(self):
        raise NotImplementedError


class Accuracy(Metric):
    def __init__(self, name="accuracy"):
        self.name = name
        self.reset()

    def reset(self):
        self.correct = self.total = 0

    def update(self, output, target):
        pred, target = _labels(output, target)
        self.correct += int((pred == target).sum())
        self.total += target.size

    def compute(self):
        return {self.name: self.correct / self.total if self.total else float("nan")}


class TopKAccuracy(Accuracy):
    def __init__(self, k=5, name=None):
        self.k = k
        super().__init__(name or f"top{k}")

    def update(self, output, target):
        hits = _topk_hits(output, target, self.k)
        self.correct += int(hits.sum())
        self.total += hits.size


class SegmentationMetrics(Metric):
    """Pixel accuracy, per-class IoU, mIoU and mean Dice from one running confusion matrix."""

    log_keys = ("miou", "pixel_accuracy")

    def __init__(self, num_classes, ignore_index=None, class_names=None):
        self.num_classes, self.ignore_index = num_classes, ignore_index
        self.class_names = list(class_names) if class_names else [str(c) for c in range(num_classes)]
        self.reset()

    def reset(self):
        self.conf = np.zeros((self.num_classes, self.num_classes), np.int64)

    def update(self, output, target):
        pred, target = _labels(output, target)
        self.conf += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def compute(self):
        iou, dice = iou_per_class(self.conf), dice_per_class(self.conf)
        total = self.conf.sum()
        out = {"pixel_accuracy": float(np.trace(self.conf) / total) if total else float("nan"),
               "miou": mean_iou(self.conf),
               "mdice": float(np.nanmean(dice)) if np.isfinite(dice).any() else float("nan")}
        out.update({f"iou_{n}": float(v) for n, v in zip(self.class_names, iou)})
        return out
