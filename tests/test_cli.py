"""The ``minicnn`` command: run in-process through ``minicnn.apps.cli.main`` (plus one real subprocess)."""
import os
import subprocess
import sys
import types

import numpy as np
import pytest

import minicnn as mc
from minicnn.apps.cli import main

DATA = os.path.join(os.path.dirname(__file__), "data")
TORCH_FILE = os.path.join(DATA, "torch_checkpoint.pth")


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_python_m_minicnn_help():
    r = subprocess.run([sys.executable, "-m", "minicnn", "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for cmd in ("models", "summary", "train", "gradcheck", "bench", "explain", "convert", "info"):
        assert cmd in r.stdout


@pytest.mark.parametrize("cmd", ["models", "summary", "train", "convert", "info", "gradcheck", "bench", "explain"])
def test_every_subcommand_has_help(capsys, cmd):
    code, out, _ = run(capsys, cmd, "--help")
    assert code == 0
    assert f"usage: minicnn {cmd}" in out


@pytest.mark.parametrize("argv, message", [
    ([], "required: <command>"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    (["convert", "only_one.pth"], "required: OUT"),
    (["summary", "resnet50", "--input-size", "3", "224"], "expected 3 arguments"),
    (["summary", "resnt50"], "unknown model 'resnt50'; did you mean resnet50"),
    (["models", "vgg61"], "unknown model 'vgg61'"),
    (["info", "/nonexistent/ck.npz"], "No such file"),
    (["info", TORCH_FILE, "--bogus"], "unrecognized arguments: --bogus"),
    (["train", "gan"], "invalid choice: 'gan'"),
    (["explain", "softmax"], "invalid choice: 'softmax'"),
])
def test_errors_exit_2_with_a_message(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err


def test_bad_checkpoint_file_exits_2(capsys, tmp_path):
    (tmp_path / "bad.pth").write_bytes(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R.")
    code, _, err = run(capsys, "info", str(tmp_path / "bad.pth"))
    assert code == 2 and "minicnn info: error:" in err and "refusing to load" in err


def test_info_lists_arrays_and_scalars(capsys, tmp_path):
    path = tmp_path / "ck.npz"
    mc.save({"model": {"fc.weight": np.zeros((10, 512), np.float32), "bn.num_batches_tracked": np.array(3)},
             "epoch": 7}, path)
    code, out, _ = run(capsys, "info", str(path))
    assert code == 0
    assert "2 arrays, 5,121 elements" in out
    lines = out.splitlines()
    assert any(line.split() == ["model/fc.weight", "float32", "(10,", "512)", "5,120"] for line in lines)
    assert any(line.split() == ["model/bn.num_batches_tracked", "int64", "()", "1"] for line in lines)
    assert "epoch = 7" in lines


def test_convert_torch_checkpoint(capsys, tmp_path):
    out_path = tmp_path / "sd.npz"
    code, out, _ = run(capsys, "convert", TORCH_FILE, str(out_path), "--key", "state_dict",
                       "--strip-prefix", "bn.")
    assert code == 0 and f"wrote {out_path}: 11 arrays" in out
    sd = mc.load(out_path)
    assert list(sd)[:3] == ["conv.weight", "running_mean", "num_batches_tracked"]
    np.testing.assert_array_equal(sd["transposed"], np.arange(120, dtype=np.float32).reshape(4, 5, 6).T)
    # whole checkpoint to .npz; the state dict alone to safetensors
    assert run(capsys, "convert", TORCH_FILE, str(tmp_path / "all.npz"))[0] == 0
    assert mc.load(tmp_path / "all.npz")["milestones"] == (10, 20)
    assert run(capsys, "convert", TORCH_FILE, str(tmp_path / "sd.safetensors"), "--key", "state_dict")[0] == 0
    assert mc.load(tmp_path / "sd.safetensors")["conv.weight"].shape == (2, 3, 2, 2)
    code, _, err = run(capsys, "convert", TORCH_FILE, str(tmp_path / "x.npz"), "--key", "model")
    assert code == 2 and "has no key 'model'" in err and "state_dict" in err
    code, _, err = run(capsys, "convert", TORCH_FILE, str(tmp_path / "x.safetensors"))
    assert code == 2 and "format='npz'" in err
    assert sorted(os.listdir(tmp_path)) == ["all.npz", "sd.npz", "sd.safetensors"]


def test_summary_resnet50(capsys):
    code, out, _ = run(capsys, "summary", "resnet50", "--input-size", "3", "32", "32", "--memory-gb", "2")
    assert code == 0
    assert "Total params: 25,557,032" in out
    assert "Largest training batch within 2 GiB" in out


def test_models_row(capsys):
    code, out, _ = run(capsys, "models", "alexnet")
    assert code == 0
    row = out.splitlines()[2].split()
    assert row[:4] == ["alexnet", "3x224x224", "61,100,840", "0.714"]


def fake_module(monkeypatch, name, result=None, exit_code=None):
    calls = []

    def fake_main(argv):
        calls.append((list(argv), sys.argv[0]))
        if exit_code is not None:
            raise SystemExit(exit_code)
        return result

    monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(main=fake_main))
    return calls


def test_train_and_gradcheck_pass_arguments_through(capsys, monkeypatch):
    calls = fake_module(monkeypatch, "minicnn.apps.train_unet", result={"miou": 0.5})
    assert main(["train", "unet", "--epochs", "2", "--quick"]) == 0
    assert calls == [(["--epochs", "2", "--quick"], "minicnn train unet")]
    calls = fake_module(monkeypatch, "minicnn.apps.gradcheck_tour", exit_code=1)
    assert main(["gradcheck", "conv2d", "--fast"]) == 1       # a failing check keeps its exit code
    assert calls == [(["conv2d", "--fast"], "minicnn gradcheck")]
    fake_module(monkeypatch, "minicnn.apps.train_enet", exit_code="error: no such data folder")
    code, _, err = run(capsys, "train", "enet", "--data", "/nope")
    assert code == 2 and "minicnn train enet: error: no such data folder" in err


def test_train_classifier_help_is_the_recipes(capsys):
    pytest.importorskip("minicnn.apps.train_classifier")
    code, out, _ = run(capsys, "train", "classifier", "--help")
    assert code == 0 and "usage: minicnn train classifier" in out and "--epochs" in out


def test_missing_part_gives_a_clear_message(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "minicnn.apps.bench", None)  # as if it were not installed
    code, _, err = run(capsys, "bench")
    assert code == 2 and "minicnn bench needs minicnn.apps.bench, which is not part of this installation" in err
    code, out, _ = run(capsys, "bench", "--help")
    assert code == 0 and "usage: minicnn bench" in out


def test_gradcheck_tour_runs(capsys):
    pytest.importorskip("minicnn.apps.gradcheck_tour")
    code, out, _ = run(capsys, "gradcheck", "relu", "max_pool2d")
    assert code == 0 and "passed=" in out and "NO" not in out.split()
    code, _, err = run(capsys, "gradcheck", "no_such_op")
    assert code == 2 and "minicnn gradcheck: error: no op named 'no_such_op'" in err


def test_explain_prints_the_worked_example(capsys):
    code, out, _ = run(capsys, "explain", "conv2d")
    assert code == 0
    assert out.startswith("conv2d: x (1, 2, 4, 4), weight (2, 2, 3, 3)")
    assert "1. im2col" in out and "5. col2im" in out and out.count("  check: ") == 6


def test_a_closed_pipe_ends_quietly():
    """``minicnn explain conv2d | head -1``: no BrokenPipeError traceback."""
    proc = subprocess.Popen([sys.executable, "-m", "minicnn", "explain", "conv2d"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader goes away before the command writes
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0 and "Traceback" not in err and "BrokenPipe" not in err
