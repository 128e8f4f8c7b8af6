import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("DIGITLAB_HOME", os.path.join(os.path.dirname(__file__), "..", ".digitlab-cache", "home"))


@pytest.fixture(scope="session")
def mnist():
    from digitlab.data import load_dataset

    return load_dataset("mnist")
