"""minicnn.viz: the graph drawing, the worked examples and the training pictures."""
import re

import numpy as np
import pytest

import minicnn as mc
import minicnn.models as models
import minicnn.nn as nn
import minicnn.nn.functional as F
from minicnn.data import read_png
from minicnn.viz import explain, feature_maps, filters, gradient_flow, graph, make_dot

pytest.importorskip("matplotlib")


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 1))
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        x = F.relu(self.bn(self.conv(x)))
        x = self.block(x) + x
        return self.fc(F.max_pool2d(x, 2).flatten(1))


def recorded(output):
    """The Functions behind ``output``, its leaves that need gradients and its edges, walked here."""
    functions, leaves, edges, stack = {}, {}, 0, [output._creator]
    while stack:
        fn = stack.pop()
        if id(fn) in functions:
            continue
        functions[id(fn)] = fn
        for e in fn._edges:
            if e is None:
                continue
            edges += 1
            if isinstance(e, tuple):
                stack.append(e[0])
            else:
                leaves[id(e)] = e
    return functions, leaves, edges


def test_graph_has_a_node_per_function_and_leaf_and_an_edge_per_input():
    mc.manual_seed(0)
    net = Net()
    x = mc.randn(2, 1, 8, 8, requires_grad=True)
    y = net(x)
    functions, leaves, edges = recorded(y)
    g = make_dot(y, params=dict(net.named_parameters()))
    assert len(functions) == 10 and len(leaves) == 11  # 10 parameters and the input
    assert len(g.nodes) == len(functions) + len(leaves) + 1  # + the output
    assert len(g.edges) == edges + 1
    assert len(re.findall(r"^\s+\w+ \[label=", g.source, re.M)) == len(g.nodes)
    assert len(re.findall(r"^\s+\w+ -> \w+$", g.source, re.M)) == len(g.edges)
    for name, _ in net.named_parameters():
        assert f'label="{name}\\n' in g.source
    assert 'label="tensor\\n(2, 1, 8, 8)"' in g.source  # the input, unnamed
    assert 'label="Conv2d\\n(2, 4, 8, 8)"' in g.source


def test_saved_arrays_and_grouping_by_module():
    net = Net()
    y = net(mc.randn(2, 1, 8, 8))
    saved = make_dot(y, show_saved=True)
    assert any(label.startswith("saved ") for label in saved.nodes.values())
    grouped = make_dot(y, params=dict(net.named_parameters()), group_by_module=True)
    labels = set(grouped.nodes.values())
    assert {"conv\nConv2d", "bn\nBatchNorm2d", "block\nSequential", "fc\nLinear"} <= labels
    assert not any(label.startswith("block.") for label in labels)  # its parameters are inside the box
    deeper = make_dot(y, params=dict(net.named_parameters()), max_depth=2)
    assert "block.0\nConv2d" in deeper.nodes.values() and "block\nSequential" not in deeper.nodes.values()


def test_a_resnet50_graph_collapses_to_its_stages():
    net = models.resnet50(num_classes=10)
    y = net(mc.randn(2, 3, 32, 32))
    full = make_dot(y, dict(net.named_parameters()))
    grouped = make_dot(y, dict(net.named_parameters()), group_by_module=True)
    assert len(full.nodes) > 300
    assert [label.split("\n")[0] for label in grouped.nodes.values() if "\n" in label] \
        and len(grouped.nodes) == 12  # stem ops' boxes, layer1-4, avgpool, fc, the output


def _not_blank(path):
    img = read_png(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    assert img[..., :3].astype(float).var() > 10  # not one colour
    return img


def test_pictures_are_written_without_graphviz(tmp_path, monkeypatch):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)  # as on a machine without `dot`
    net = Net()
    y = net(mc.randn(2, 1, 8, 8))
    g = make_dot(y, dict(net.named_parameters()))
    _not_blank(g.save(str(tmp_path / "g.png")))
    svg = open(g.save(str(tmp_path / "g.svg"))).read()
    assert "<svg" in svg and "conv.weight" in svg
    assert open(g.save(str(tmp_path / "g.dot"))).read() == g.source
    with pytest.raises(ValueError, match=r"unknown format 'jpg'"):
        g.save(str(tmp_path / "g.jpg"))


def test_graph_errors_name_the_problem():
    with mc.no_grad():
        y = Net()(mc.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match="no graph"):
        make_dot(y)
    y = Net()(mc.randn(2, 1, 8, 8))
    y.sum().backward()
    with pytest.raises(ValueError, match="freed by backward"):
        make_dot(y)


def test_feature_maps_filters_and_gradient_flow(tmp_path):
    mc.manual_seed(0)
    net = Net()
    x = mc.randn(1, 1, 8, 8)
    _not_blank(feature_maps(net, x[0], ["conv", "block.0"], str(tmp_path / "maps.png")))
    _not_blank(feature_maps(net, x, None, str(tmp_path / "all.png")))  # every Conv2d
    _not_blank(filters(net.block[0], str(tmp_path / "filters.png")))
    with pytest.raises(ValueError, match="no parameter has a gradient"):
        gradient_flow(net, str(tmp_path / "g.png"))
    F.cross_entropy(net(mc.randn(2, 1, 8, 8)), mc.tensor(np.array([0, 2]))).backward()
    _not_blank(gradient_flow(net, str(tmp_path / "g.png")))
    with pytest.raises(ValueError, match="no layer named 'conv9'.*conv, bn, block"):
        feature_maps(net, x, ["conv9"], str(tmp_path / "m.png"))
    with pytest.raises(ValueError, match="expected one image, got a batch of 2"):
        feature_maps(net, mc.randn(2, 1, 8, 8), ["conv"], str(tmp_path / "m.png"))


# -- the worked examples: what they print is what the ops compute -----------------------------

def _block(text, header):
    """The numbers of the lines after the line starting with ``header``, up to a blank line or a
    line that starts with a letter other than a row label (rows may carry a label first)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header)) + 1
    rows = []
    for line in lines[start:]:
        if not line.strip() or line.startswith("  check") or re.match(r"^[a-z]{2,}", line):
            break
        row = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", re.sub(r"[a-z]+\d+", "", line))]
        if row:  # not a line of column labels
            rows.append(row)
    return np.array(rows)


def _planes(text, header):
    """An (1, C, H, W) array from the side-by-side planes printed under ``header``."""
    rows = _block(text, header)
    c = len(re.findall(r"\[0, \d+\]", next(line for line in text.splitlines() if line.startswith(header))))
    return rows.reshape(rows.shape[0], c, -1).transpose(1, 0, 2)[None]


def test_explain_conv2d_prints_what_the_op_computes():
    text = explain("conv2d")
    assert max(len(line) for line in text.splitlines()) <= 100
    x = _planes(text, "x[0, 0]")
    w = _block(text, "weight, one row per output channel").reshape(2, 2, 3, 3)
    y = _planes(text, "y[0, 0]")
    tx, tw = mc.tensor(x, requires_grad=True), mc.tensor(w, requires_grad=True)
    out = F.conv2d(tx, tw, padding=1)
    np.testing.assert_array_equal(out.numpy(), y)
    gy = _planes(text, "gy[0, 0]")
    (out * mc.tensor(gy)).sum().backward()
    np.testing.assert_array_equal(_planes(text, "dx[0, 0]"), tx.grad.numpy())
    np.testing.assert_array_equal(_block(text, "6. weight gradient").reshape(w.shape), tw.grad.numpy())
    col = _block(text, "   (p = oy*4 + ox")
    assert col.shape == (18, 16)


def test_explain_max_pool_and_cross_entropy_print_what_the_ops_compute():
    text = explain("max_pool2d")
    x = mc.tensor(_planes(text, "x[0, 0]"), requires_grad=True)
    y = F.max_pool2d(x, 2)
    np.testing.assert_array_equal(_planes(text, "y[0, 0]"), y.numpy())
    (y * mc.tensor(_planes(text, "gy[0, 0]"))).sum().backward()
    np.testing.assert_array_equal(_planes(text, "dx[0, 0]"), x.grad.numpy())
    text = explain("cross_entropy")
    z = _block(text, "z")
    target = np.array([int(v) for v in re.search(r"targets \[(.*)\]", text).group(1).split(",")])
    loss = float(re.search(r"-log p\[target\] = (\S+)", text).group(1))
    assert F.cross_entropy(mc.tensor(z), mc.tensor(target)).item() == pytest.approx(loss, abs=1e-3)


@pytest.mark.parametrize("op", ["conv_transpose2d", "avg_pool2d", "batch_norm"])
def test_every_worked_example_checks_itself_and_fits_100_columns(op):
    text = explain(op, seed=3)
    assert text.count("  check: ") >= 3
    assert max(len(line) for line in text.splitlines()) <= 100


def test_explain_refuses_an_unknown_op():
    with pytest.raises(ValueError, match=r"no worked example for 'softmax'; choose one of conv2d"):
        explain("softmax")
