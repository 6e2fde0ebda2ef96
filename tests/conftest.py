import pytest

from arignote import config
from arignote.core.plugins import registry

from checks import backends_under_test


@pytest.fixture(params=backends_under_test())
def backend(request):
    """Each test that takes `backend` runs once per installed, usable backend
    (or only on ARIGNOTE_BACKEND's when it is set)."""
    return request.param


def _setting(name, value):
    """config.<name> = value for a test, the setting in force before it restored afterwards."""
    saved = getattr(config, name)
    setattr(config, name, value)
    yield
    setattr(config, name, saved)


@pytest.fixture
def all_rewrites():
    """Run a test with every rewrite pass (config.rewrites = 'all')."""
    yield from _setting("rewrites", "all")


@pytest.fixture
def floatX32():
    """Run a test with config.floatX = 'float32'."""
    yield from _setting("floatX", "float32")


@pytest.fixture
def numba_backend(tmp_path, monkeypatch):
    """The backend named 'numba' (registered for the test when its entry point is not installed),
    with a fresh cache directory."""
    pytest.importorskip("numba")
    import arignote
    from arignote.backends.numba import NumbaBackend

    monkeypatch.setattr(arignote.config, "cache_dir", str(tmp_path / "cache"))
    registered = "numba" in registry.names()
    if not registered:
        registry.register(NumbaBackend())
    yield "numba"
    if not registered:
        registry.reset()


@pytest.fixture(scope="module")
def c():
    """The name of the C backend, registered for these tests if its entry point is not installed."""
    from arignote.backends.c import CBackend

    registry.names()
    added = "c" not in registry._backends
    if added:
        registry._backends["c"] = CBackend()
    if not registry.availability("c"):
        pytest.skip(f"the C backend is not usable here: {registry.availability('c').reason}")
    yield "c"
    if added:
        registry._backends.pop("c", None)
        registry._availability.pop("c", None)
