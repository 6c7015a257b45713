import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import minicnn as mc

settings.register_profile(
    "default", max_examples=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("default")


@pytest.fixture(autouse=True)
def _seed():
    mc.manual_seed(0)
    np.random.seed(0)


def pytest_terminal_summary(terminalreporter):
    """One line on ONNX's own backend node tests (tests/test_onnx.py): how many pass on minicnn."""
    counts = {}
    for outcome, reports in terminalreporter.stats.items():
        for r in reports:
            if "OnnxBackendNodeModelTest" in getattr(r, "nodeid", "") and getattr(r, "when", None) == "call":
                counts[outcome] = counts.get(outcome, 0) + 1
    if counts:
        terminalreporter.write_line(
            "ONNX backend node tests on minicnn: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
            + " (xfailed: known gaps, listed with reasons in tests/test_onnx.py NOT_SUPPORTED)")
