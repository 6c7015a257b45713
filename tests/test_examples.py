"""The training apps (``minicnn train``) in --quick mode, and the example programs, so they never rot."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from minicnn.data import read_png
from minicnn.apps import train_classifier, train_enet, train_unet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = {"train_classifier": train_classifier, "train_unet": train_unet, "train_enet": train_enet}


def run(recipe, capsys, *argv):
    result = recipe.main(["--quick", "--no-progress", *argv])
    lines = capsys.readouterr().out.strip().splitlines()
    return result, lines


def test_classifier_quick_on_digits_with_plot_and_resume(tmp_path, capsys):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    result, lines = run(train_classifier, capsys, "--checkpoint-dir", str(tmp_path), "--plot")
    assert lines[0].startswith("digits: 96 train / 64 val / 64 test images of shape (1, 8, 8)")
    assert re.fullmatch(r"test_accuracy=\d\.\d{3}", lines[-1])
    assert float(lines[-1].split("=")[1]) == pytest.approx(result["accuracy"], abs=5e-4)
    assert {"last.ckpt", "log.csv", "history.json", "history.png"} <= set(os.listdir(tmp_path))
    assert read_png(tmp_path / "history.png").ndim == 3
    _, again = run(train_classifier, capsys, "--checkpoint-dir", str(tmp_path), "--resume")
    assert any(line.startswith("resumed from") and "after epoch 2" in line for line in again)
    assert again[-1] == lines[-1]  # nothing left to train: the same weights, the same score


def test_classifier_quick_on_shapes(capsys):
    _, lines = run(train_classifier, capsys, "--data", "shapes", "--epochs", "1")
    assert lines[0].startswith("shapes: ") and "(3, 32, 32)" in lines[0]
    assert re.fullmatch(r"test_accuracy=\d\.\d{3}", lines[-1])


@pytest.mark.parametrize("name", ["train_unet", "train_enet"])
def test_segmentation_quick(name, tmp_path, capsys):
    result, lines = run(RECIPES[name], capsys, "--checkpoint-dir", str(tmp_path))
    assert re.fullmatch(r"miou=\d\.\d{3}", lines[-1])
    assert 0 <= result["miou"] <= 1 and "iou_triangle" in result
    sheet = read_png(tmp_path / "predictions.png")
    assert sheet.ndim == 3 and sheet.shape[1] > 3 * 128  # image | truth | prediction, enlarged
    if name == "train_enet":
        assert any(line.startswith("class weights 1/ln(1.02 + p): background") for line in lines)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        RECIPES[name].main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for option in ("--quick", "--device", "--epochs", "--checkpoint-dir", "--resume", "--plot"):
        assert option in text


# -- the example programs: run as a user runs them ------------------------------------------

def example(name, *argv, timeout=300):
    """Run ``python examples/NAME.py ARGV`` in a fresh interpreter; its output lines."""
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", name), *argv], capture_output=True,
                         text=True, timeout=timeout, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()


@pytest.mark.parametrize("name", sorted(n for n in os.listdir(os.path.join(ROOT, "examples")) if n.endswith(".py")))
def test_examples_use_only_the_public_api(name):
    """A program a user reads imports minicnn's public modules, never a private name or the apps."""
    source = open(os.path.join(ROOT, "examples", name)).read()
    imports = re.findall(r"^(?:from|import) (minicnn[\w.]*)(?: as \w+)?(?: import (.*))?$", source, re.M)
    assert imports
    for module, names in imports:
        assert not module.startswith(("minicnn.apps", "minicnn.cpu", "minicnn.cuda", "minicnn.ops"))
        assert "._" not in module and not any(n.strip().startswith("_") for n in names.split(","))


@pytest.mark.slow
def test_classifier_example_learns_the_digits():
    pytest.importorskip("sklearn")
    lines = example("train_classifier.py", "--epochs", "3")
    assert lines[0].endswith("1437 training and 360 test images on 1 process(es)")
    assert re.fullmatch(r"test_accuracy=\d\.\d{3}", lines[-1])
    assert float(lines[-1].split("=")[1]) > 0.9  # chance is 0.1; 10 epochs reach about 0.99


@pytest.mark.parametrize("model", ["unet", "enet"])
def test_segmentation_example_runs_and_scores_every_class(model):
    lines = example("train_segmentation.py", "--model", model, "--train-size", "64", "--image-size", "32",
                    "--epochs", "1")
    assert lines[0].startswith(f"{model}: ") and "64 training and 16 test images of 32x32" in lines[0]
    ious = dict(item.rsplit(" ", 1) for item in lines[-2].removeprefix("test IoU: ").split(", "))
    assert set(ious) == {"background", "circle", "square", "triangle"}
    assert all(0 <= float(v) <= 1 for v in ious.values())
    assert float(lines[-1].split("=")[1]) == pytest.approx(np.mean([float(v) for v in ious.values()]), abs=2e-3)


def test_gradcheck_example_passes_and_catches_the_wrong_backward():
    lines = example("gradcheck_tour.py")
    assert "  -> the check caught the wrong backward" in lines
    assert lines[-1] == "passed=9/9"


def test_resume_without_checkpoint_dir_is_an_error(capsys):
    with pytest.raises(SystemExit, match="--resume needs --checkpoint-dir"):
        train_unet.main(["--quick", "--resume"])


def test_plot_gradients_draws_the_gradient_flow_after_each_epoch(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    run(train_classifier, capsys, "--data", "shapes", "--epochs", "1", "--plot-gradients",
        "--checkpoint-dir", str(tmp_path))
    picture = read_png(tmp_path / "gradient_flow.png")
    assert picture.ndim == 3 and picture[..., :3].astype(float).var() > 10
    assert (tmp_path / "history.png").exists()  # --plot-gradients implies --plot


def test_look_inside_example_writes_its_pictures(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    lines = example("look_inside.py", "--out", str(tmp_path))
    written = [line.removeprefix("wrote ") for line in lines if line.startswith("wrote ")]
    assert [os.path.basename(p) for p in written] == ["graph.dot", "graph.png", "gradient_flow.png",
                                                     "feature_maps.png", "filters.png"]
    assert re.fullmatch(r"graph: (\d+) nodes, (\d+) edges", lines[-6])
    for path in written[1:]:
        picture = read_png(path)
        assert picture.ndim == 3 and picture[..., :3].astype(float).var() > 10, path
    assert open(written[0]).read().startswith("digraph {")


def test_quickstart_visibly_works():
    lines = example("quickstart.py")
    assert float(lines[-1].removeprefix("train_accuracy=")) >= 0.95  # the spirals are separated
