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
