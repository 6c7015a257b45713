"""Issue 15's "done when": four kinds of classic PyTorch script, ported by changing their imports
(``import minicnn as torch``) and their dataset download (local data), run here end to end.
The scripts are in tests/ported/, written as their originals are."""
import ast
import os
import runpy
import zipfile

import numpy as np
import pytest

import minicnn as torch

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ported")
SCRIPTS = ["mnist_cnn.py", "cifar10_tutorial.py", "neural_networks_tutorial.py", "unet_segmentation.py"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_scripts_import_minicnn_in_pytorchs_place_and_nothing_else(script):
    tree = ast.parse(open(os.path.join(HERE, script)).read())
    modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {m.split(".")[0] for m in modules} <= {"minicnn", "numpy", "argparse", "sklearn"}, modules
    assert "torch" not in {m.split(".")[0] for m in modules}


def test_pytorch_examples_mnist_with_adadelta_and_steplr(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    monkeypatch.chdir(tmp_path)
    main = runpy.run_path(os.path.join(HERE, "mnist_cnn.py"), run_name="ported")["main"]
    accuracy = main(["--epochs", "3", "--limit", "1024", "--log-interval", "100", "--save-model"])
    assert accuracy > 0.75
    assert zipfile.is_zipfile(tmp_path / "mnist_cnn.pt")  # torch.save(..., ".pt"): PyTorch's own format
    assert torch.load(str(tmp_path / "mnist_cnn.pt"), weights_only=True)["fc2.weight"].shape == (10, 128)


def test_the_cifar10_tutorial(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    g = runpy.run_path(os.path.join(HERE, "cifar10_tutorial.py"), run_name="__main__")
    assert g["total"] == 500 and g["correct"] / g["total"] > 0.9
    assert sum(g["total_pred"].values()) == 500
    assert (tmp_path / "cifar_net.pth").exists()


def test_the_neural_networks_tutorial_with_its_manual_sgd_step_on_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    g = runpy.run_path(os.path.join(HERE, "neural_networks_tutorial.py"), run_name="__main__")
    assert len(g["params"]) == 10 and tuple(g["params"][0].size()) == (6, 1, 5, 5)
    losses = g["losses"]
    assert all(b < a for a, b in zip(losses, losses[1:])), losses  # the hand-made step, then optim.SGD
    assert g["loss"].grad_fn is not None and g["net"].conv1.bias.grad is not None


def test_a_unet_with_bilinear_upsampling_dice_rmsprop_plateau_and_clipping(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    g = runpy.run_path(os.path.join(HERE, "unet_segmentation.py"), run_name="ported")
    torch.manual_seed(0)
    history = g["main"](["--bilinear", "--width", "8", "--epochs", "6", "-b", "4", "-l", "1e-3", "--images", "128"])
    (first_loss, _), (last_loss, last_dice) = history[0], history[-1]
    assert last_loss < 0.5 * first_loss and last_dice > 0.5, history
    assert np.isfinite([v for row in history for v in row]).all()
