import os
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris, load_wine
from sklearn.preprocessing import StandardScaler


def pytest_configure(config):
    warnings.filterwarnings("ignore", message="Solution may be inaccurate")


def random_problem_data(seed, n=30, d=3, classes=3, ties=False, duplicates=False):
    """Small random data; ``ties`` uses integer features (many equal distances),
    ``duplicates`` copies some rows exactly."""
    rng = np.random.default_rng(seed)
    X = rng.integers(-2, 3, size=(n, d)).astype(float) if ties else rng.standard_normal((n, d))
    y = np.arange(n) % classes
    rng.shuffle(y)
    if duplicates:
        X[1] = X[0]
        X[5] = X[4]
        y[1] = y[0]
    return X, y


def random_psd(rng, d, rank=None):
    A = rng.standard_normal((rank or d, d))
    return A.T @ A / d


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def wine_std():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="session")
def iris_std():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="session")
def data_home():
    """The paper's data directory from CONVEXMETRIC_DATA.

    Tests that need it are skipped when it is not set, unless
    CONVEXMETRIC_REQUIRE_DATA=1 (as in .ci/run), where that is a failure.
    """
    path = os.environ.get("CONVEXMETRIC_DATA")
    if not path or not os.path.isdir(path):
        msg = (f"CONVEXMETRIC_DATA is {'not set' if not path else 'not a directory: ' + path}; "
               "point it at the paper's data sets (shared/data) to run this test")
        if os.environ.get("CONVEXMETRIC_REQUIRE_DATA") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return path
