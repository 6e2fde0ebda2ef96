import pytest

from arignote import config

from checks import backends_under_test


@pytest.fixture(params=backends_under_test())
def backend(request):
    """Each test that takes `backend` runs once per installed, usable backend
    (or only on ARIGNOTE_BACKEND's when it is set)."""
    return request.param


@pytest.fixture
def floatX32():
    """Run a test with config.floatX = 'float32', restoring it afterwards."""
    saved = config.floatX
    config.floatX = "float32"
    yield
    config.floatX = saved
