"""The per-epoch record of a run: CSV and JSON files, and a plot of loss and metrics."""
import csv
import io
import json
import math
import os


def _atomic_write_text(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


def write_history(history, directory):
    """Write ``history`` (a list of {column: value} per epoch) to ``directory``/log.csv and history.json."""
    columns = []
    for row in history:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    w = csv.DictWriter(buf, columns, lineterminator="\n")
    w.writeheader()
    w.writerows(history)
    _atomic_write_text(os.path.join(directory, "log.csv"), buf.getvalue())
    clean = [{k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in r.items()}
             for r in history]
    _atomic_write_text(os.path.join(directory, "history.json"), json.dumps(clean, indent=1) + "\n")


def plot_history(history, path):
    """Save a PNG: losses (train/val) on the left, every other val_/train_ metric on the right.

    matplotlib is imported here, with the Agg backend (no display needed)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install matplotlib (or minicnn[plot])") from None
    epochs = [r["epoch"] for r in history]
    keys = [k for k in history[-1] if k.startswith(("train_", "val_"))]
    losses = [k for k in keys if k.endswith("loss")]
    others = [k for k in keys if k not in losses]
    fig, axes = plt.subplots(1, 2 if others else 1, figsize=(11 if others else 6, 4), squeeze=False)
    for ax, ks, title in zip(axes[0], (losses, others), ("loss", "metrics")):
        for k in ks:
            ax.plot(epochs, [r.get(k, float("nan")) for r in history], marker="o", ms=3, label=k)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
