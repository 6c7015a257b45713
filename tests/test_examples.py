"""The training recipes (and the examples that wrap them) in --quick mode, so they never rot."""
import os
import re
import subprocess
import sys

import pytest

from minicnn.data import read_png
from minicnn.recipes import train_classifier, train_enet, train_unet

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
def test_help_and_wrapper(name, capsys):
    with pytest.raises(SystemExit) as e:
        RECIPES[name].main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for option in ("--quick", "--device", "--epochs", "--checkpoint-dir", "--resume", "--plot"):
        assert option in text
    wrapper = open(os.path.join(ROOT, "examples", f"{name}.py")).read()
    assert f"from minicnn.recipes.{name} import main" in wrapper and f"minicnn/recipes/{name}.py" in wrapper


def test_example_script_runs_as_a_program():
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train_classifier.py"), "--help"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "usage:" in out.stdout


def test_resume_without_checkpoint_dir_is_an_error(capsys):
    with pytest.raises(SystemExit, match="--resume needs --checkpoint-dir"):
        train_unet.main(["--quick", "--resume"])
