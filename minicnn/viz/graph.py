"""The autograd graph as a picture: ``make_dot``, in the manner of torchviz.

Every op that ran with gradients left a ``Function`` node behind, with one edge per input:
the node that produced the input, or a leaf tensor (a parameter, an input image). Walking the
edges back from the output gives the graph that ``backward`` will walk. ``make_dot`` writes it
as Graphviz DOT text; ``Digraph.save`` renders it with Graphviz's ``dot`` where that is
installed, and otherwise draws it with matplotlib, each node on the level of its longest path
from the output, so it works on a bare machine too.

A ResNet-50 has some 500 ops: ``max_depth=1`` (or ``group_by_module=True``) draws one box per
top-level module instead (``layer1``, ``layer2``, ...), ``max_depth=2`` one per block, and so
on; the modules are those each op ran in (``Module.__call__`` records them).
"""
import os
import shutil
import subprocess

from ..tensor import Tensor


class Digraph:
    """A drawn graph: ``source`` (DOT text), ``nodes`` {id: label}, ``edges`` [(from, to)] (from
    an input towards the op that read it), ``save(path)``."""

    def __init__(self, nodes, edges, kinds):
        self.nodes, self.edges, self.kinds = nodes, edges, kinds
        lines = ["digraph {", '  graph [rankdir=TB]', '  node [fontname="monospace" fontsize=10 shape=box]']
        for nid, label in nodes.items():
            style = {"op": 'style=filled fillcolor="#dbe8f7"', "param": 'style=filled fillcolor="#d6efd6"',
                     "input": 'style=filled fillcolor="#eeeeee"', "saved": 'style=dashed',
                     "module": 'style="filled,rounded" fillcolor="#f7e6c9"',
                     "output": 'style=filled fillcolor="#f7d6d6"'}[kinds[nid]]
            text = label.replace('"', "'").replace("\n", "\\n")
            lines.append(f'  {nid} [label="{text}" {style}]')
        lines += [f"  {a} -> {b}" for a, b in edges]
        lines.append("}")
        self.source = "\n".join(lines) + "\n"

    def save(self, path):
        """Write ``path``: .dot (the text), or .png / .svg / .pdf (Graphviz's ``dot`` when it is
        on the PATH, else matplotlib). Returns ``path``."""
        ext = os.path.splitext(path)[1].lower().lstrip(".")
        if ext in ("dot", "gv"):
            with open(path, "w") as f:
                f.write(self.source)
            return path
        if ext not in ("png", "svg", "pdf"):
            raise ValueError(f"Digraph.save: unknown format {ext!r} of {path}; use .dot, .png, .svg or .pdf")
        dot = shutil.which("dot")
        if dot is not None:
            subprocess.run([dot, f"-T{ext}", "-o", path], input=self.source, text=True, check=True)
            return path
        return self._draw(path)

    def _levels(self):
        """Each node's level: the length of its longest path to a node with no successor."""
        succ = {n: [] for n in self.nodes}
        for a, b in self.edges:
            succ[a].append(b)
        level = {}

        def depth(n):
            stack = [(n, False)]
            while stack:
                node, done = stack.pop()
                if node in level:
                    continue
                if done:
                    level[node] = 1 + max((level[s] for s in succ[node]), default=-1)
                    continue
                stack.append((node, True))
                stack.extend((s, False) for s in succ[node] if s not in level)
            return level[n]

        for n in self.nodes:
            depth(n)
        return level

    def _draw(self, path):
        """The graph drawn with matplotlib: the output at the bottom, inputs above."""
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        level = self._levels()
        rows = {}
        for n in self.nodes:
            rows.setdefault(level[n], []).append(n)
        height = max(rows) + 1
        width = max(len(r) for r in rows.values())
        position = {}
        for lv, members in rows.items():
            for i, n in enumerate(members):
                position[n] = ((i + 0.5) / len(members) * width, lv)
        fig, ax = plt.subplots(figsize=(min(4 + 2.2 * width, 60), min(2 + 0.9 * height, 200)))
        colours = {"op": "#dbe8f7", "param": "#d6efd6", "input": "#eeeeee", "saved": "#ffffff",
                   "module": "#f7e6c9", "output": "#f7d6d6"}
        for a, b in self.edges:
            (xa, ya), (xb, yb) = position[a], position[b]
            ax.annotate("", xy=(xb, yb + 0.25), xytext=(xa, ya - 0.25),
                        arrowprops=dict(arrowstyle="->", color="#555555", lw=0.8))
        for n, (x, y) in position.items():
            ax.text(x, y, self.nodes[n], ha="center", va="center", fontsize=7, family="monospace",
                    bbox=dict(boxstyle="round,pad=0.3", fc=colours[self.kinds[n]], ec="#333333", lw=0.6))
        ax.set_xlim(-0.2, width + 0.2)
        ax.set_ylim(-0.7, height - 0.3)
        ax.axis("off")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def _shape(meta):
    shape = tuple(meta[0])
    return "(" + ", ".join(map(str, shape)) + ")"


def _check_alive(fn):
    if getattr(fn, "_freed", False):
        raise ValueError(f"make_dot: the graph was freed by backward() at {fn.name}; draw it before calling "
                         "backward(), or call backward(retain_graph=True)")


def make_dot(output, params=None, show_saved=False, max_depth=None, group_by_module=False):
    """The graph that produced ``output`` (a Tensor, or a tuple of them), as a ``Digraph``.

    ``params``: {name: tensor} (e.g. ``dict(model.named_parameters())``) labels the leaves.
    ``show_saved``: also draw the arrays each op saved for its backward.
    ``max_depth`` (or ``group_by_module=True``, depth 1): ops that ran inside a module that
    deep below the top are drawn as one box per such module."""
    outputs = output if isinstance(output, (tuple, list)) else (output,)
    for t in outputs:
        if not isinstance(t, Tensor):
            raise TypeError(f"make_dot: expected a Tensor, got {type(t).__name__}")
        if t._creator is None:
            raise ValueError("make_dot: the output has no graph (it was computed under no_grad, or is a leaf)")
        _check_alive(t._creator)
    depth = 1 if group_by_module and max_depth is None else max_depth
    names = {id(p): name for name, p in (params or {}).items()}
    nodes, kinds, edges, module_names = {}, {}, [], {}

    def group_of(fn):
        """The module box a node goes into (its name and id), or None to draw the op itself."""
        scope = getattr(fn, "_scope", ())
        if depth is None or len(scope) <= depth:
            return None
        root, module = scope[0], scope[depth]
        if id(root) not in module_names:
            module_names[id(root)] = {id(m): n for n, m in root.named_modules()}
        name = module_names[id(root)].get(id(module), type(module).__name__)
        return f"m{id(module)}", f"{name}\n{type(module).__name__}"

    def node_id(fn):
        group = group_of(fn)
        if group is None:
            nid = f"f{id(fn)}"
            if nid not in nodes:
                nodes[nid], kinds[nid] = f"{fn.name}\n" + " ".join(_shape(m) for m in fn._out_meta), "op"
            return nid
        nid, label = group
        if nid not in nodes:
            nodes[nid], kinds[nid] = label, "module"
        return nid

    def add_edge(a, b):
        if a != b and (a, b) not in seen_edges:
            seen_edges.add((a, b))
            edges.append((a, b))

    seen_edges, seen, stack = set(), set(), [t._creator for t in outputs]
    for k, t in enumerate(outputs):
        out_id = f"out{k}"
        nodes[out_id], kinds[out_id] = f"output\n{_shape((t.shape,))}", "output"
        add_edge(node_id(t._creator), out_id)
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        _check_alive(fn)
        me = node_id(fn)
        for edge in fn._edges:
            if edge is None:
                continue
            if isinstance(edge, tuple):
                add_edge(node_id(edge[0]), me)
                stack.append(edge[0])
            elif kinds[me] == "module":
                continue  # a module box stands for its parameters too
            else:
                leaf = f"t{id(edge)}"
                if leaf not in nodes:
                    name = names.get(id(edge))
                    nodes[leaf] = f"{name}\n{_shape((edge.shape,))}" if name else f"tensor\n{_shape((edge.shape,))}"
                    kinds[leaf] = "param" if name else "input"
                add_edge(leaf, me)
        if show_saved and group_of(fn) is None:
            for attr, value in sorted(vars(fn).items()):
                if not attr.startswith("_") and isinstance(getattr(value, "shape", None), tuple) \
                        and hasattr(value, "dtype"):
                    sid = f"s{id(fn)}_{attr}"
                    nodes[sid], kinds[sid] = f"saved {attr}\n{_shape((value.shape,))}", "saved"
                    add_edge(sid, me)
    return Digraph(nodes, edges, kinds)
