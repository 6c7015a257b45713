"""Classification and segmentation metrics against hand counts and plain loops."""
import numpy as np
import pytest

import minicnn as mc
from minicnn import metrics as M


def test_accuracy_from_logits_labels_and_tensors():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], np.float32)
    target = np.array([1, 0, 0, 0])
    assert M.accuracy(logits, target) == 0.75
    assert M.accuracy(mc.tensor(logits), mc.tensor(target)) == 0.75
    assert M.accuracy(np.array([1, 0, 1, 0]), target) == 0.75
    with pytest.raises(ValueError, match="does not match target"):
        M.accuracy(logits, target[:3])


def test_topk_accuracy():
    logits = np.array([[5, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5], [1, 0, 0, 0, 0, 0]], np.float32)
    target = np.array([2, 2, 5])
    assert M.topk_accuracy(logits, target, k=1) == 0.0
    assert M.topk_accuracy(logits, target, k=3) == pytest.approx(1 / 3)
    assert M.topk_accuracy(logits, target, k=4) == pytest.approx(2 / 3)
    assert M.topk_accuracy(logits, target, k=10) == 1.0


def test_confusion_matrix_matches_loop():
    rng = np.random.default_rng(0)
    pred, target = rng.integers(0, 4, (3, 5, 7)), rng.integers(0, 4, (3, 5, 7))
    want = np.zeros((4, 4), np.int64)
    for t, p in zip(target.ravel(), pred.ravel()):
        want[t, p] += 1
    np.testing.assert_array_equal(M.confusion_matrix(pred, target, 4), want)
    target[0, 0, :] = 255
    kept = target != 255
    assert M.confusion_matrix(pred, target, 4, ignore_index=255).sum() == kept.sum()
    with pytest.raises(ValueError, match="outside"):
        M.confusion_matrix(pred, target, 4)


def test_iou_and_dice_by_hand():
    # class 0: tp 3, fp 1, fn 0 -> IoU 3/4, Dice 6/7; class 1: tp 1, fp 0, fn 1 -> 1/2, 2/3; class 2 absent
    target = np.array([0, 0, 0, 1, 1])
    pred = np.array([0, 0, 0, 0, 1])
    conf = M.confusion_matrix(pred, target, 3)
    iou, dice = M.iou_per_class(conf), M.dice_per_class(conf)
    np.testing.assert_allclose(iou[:2], [0.75, 0.5])
    np.testing.assert_allclose(dice[:2], [6 / 7, 2 / 3])
    assert np.isnan(iou[2]) and np.isnan(dice[2])
    assert M.mean_iou(conf) == pytest.approx(0.625)


def test_accumulators_equal_the_whole_batch_values():
    rng = np.random.default_rng(1)
    logits, target = rng.standard_normal((40, 10)), rng.integers(0, 10, 40)
    acc, top5 = M.Accuracy(), M.TopKAccuracy(5)
    for i in range(0, 40, 16):
        acc.update(logits[i:i + 16], target[i:i + 16])
        top5.update(logits[i:i + 16], target[i:i + 16])
    assert acc.compute() == {"accuracy": M.accuracy(logits, target)}
    assert top5.compute()["top5"] == pytest.approx(M.topk_accuracy(logits, target, 5))
    acc.reset()
    assert np.isnan(acc.compute()["accuracy"])


def test_segmentation_metrics_from_logits():
    rng = np.random.default_rng(2)
    logits = rng.standard_normal((4, 3, 6, 5)).astype(np.float32)
    target = rng.integers(0, 3, (4, 6, 5))
    seg = M.SegmentationMetrics(3, class_names=["bg", "a", "b"])
    seg.update(logits[:2], target[:2])
    seg.update(mc.tensor(logits[2:]), mc.tensor(target[2:]))
    out = seg.compute()
    conf = M.confusion_matrix(logits.argmax(1), target, 3)
    assert out["miou"] == pytest.approx(M.mean_iou(conf))
    assert out["pixel_accuracy"] == pytest.approx((logits.argmax(1) == target).mean())
    assert out["iou_b"] == pytest.approx(M.iou_per_class(conf)[2])
    assert out["mdice"] == pytest.approx(np.nanmean(M.dice_per_class(conf)))
    seg.reset()
    seg.update(target, target)
    assert seg.compute()["miou"] == 1.0
