import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault(
    "DIGITLAB_HOME", os.path.join(os.path.dirname(__file__), "..", ".digitlab-cache", "home")
)


@pytest.fixture(scope="session")
def mnist():
    from digitlab.data import load_dataset

    return load_dataset("mnist")


@pytest.fixture(scope="module")
def one_blas_thread():
    """One BLAS/OpenMP thread: on a shared 2-core machine more threads spin and run several times slower.
    Use with ``pytestmark = pytest.mark.usefixtures("one_blas_thread")``."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
