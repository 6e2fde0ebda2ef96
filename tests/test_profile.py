"""function(..., profile=True): per-node times on every backend, call totals, Theano's summary tables."""

import io
import pickle

import numpy as np
import pytest

import arignote
import arignote.tensor as T
from arignote import config
from arignote.core import profile as profiling
from arignote.core.plugins import Backend, registry
from arignote.core.profile import ProfileStats
from arignote.ifelse import ifelse


def summary_of(stats):
    out = io.StringIO()
    stats.summary(file=out)
    return out.getvalue()


def training_step(backend, size=40, **kwargs):
    """A function with an explicit input, a given, a shared variable and an update."""
    x, scale = T.matrix("x"), T.scalar("scale")
    w = arignote.shared(np.full((size, size), 0.5), name="w")
    hidden = T.tanh(T.dot(x, w) * scale)
    cost = (hidden ** 2).sum()
    f = arignote.function([x], cost, updates=[(w, w - 0.01 * T.grad(cost, w))],
                          givens={scale: np.float64(2.0)}, backend=backend, **kwargs)
    return f, w


def test_every_node_is_timed_on_every_call_with_updates_givens_and_shared_variables(backend):
    f, w = training_step(backend, profile=True, name="step")
    x = np.random.default_rng(0).standard_normal((40, 40))
    expected_w = w.get_value()
    for _ in range(5):
        f(x)
    stats = f.profile
    nodes = f.maker.fgraph.apply_nodes
    assert stats.per_node and stats.call_count == 5 and stats.failed_calls == 0
    assert set(stats.apply_time) == set(nodes)
    assert all(stats.apply_time[node] > 0 for node in nodes), stats.apply_time
    assert all(stats.apply_callcount[node] == 5 for node in nodes)
    assert 0 < stats.node_time <= stats.backend_time <= stats.call_time
    assert stats.fct_callcount == 5 and stats.fct_call_time == stats.call_time  # Theano's names
    assert not np.array_equal(w.get_value(), expected_w)  # the updates ran

    text = summary_of(stats)
    for heading in ("Function profiling", "Message: step", "Time in 5 calls to Function.__call__",
                    "Time outside the backend", "\nClass\n", "\nOps\n", "\nApply\n", "arignote.core.ops.Dot"):
        assert heading in text, heading
    apply_section = text.split("\nApply\n")[1]
    for k, node in enumerate(nodes):
        assert f" {k} {profiling.node_text(node, nodes)}" in apply_section


def test_node_times_plus_the_time_outside_the_backend_add_up_to_the_call_time(backend):
    x, y = T.matrix("x"), T.matrix("y")
    product = T.dot(T.exp(x) * 0.5, T.tanh(y))
    outputs = [T.log1p(product ** 2) + T.sqrt(abs(product)), (x * y).sum(), x[0, 0] + y[1, 1]]
    f = arignote.function([x, y], outputs, backend=backend, profile=True)
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((400, 400)), rng.standard_normal((400, 400))
    f(a, b)  # numba compiles on the first call: leave it out
    f.profile.reset()
    for _ in range(8):
        f(a, b)
    stats = f.profile
    assert stats.call_count == 8
    accounted = stats.node_time + stats.outside_time
    # what neither counts is the backend's own work between its nodes (marshalling, a few microseconds a
    # call against milliseconds of real work): a unit, a lost or a doubled node would be far beyond 10 %
    assert abs(accounted - stats.call_time) <= 0.1 * stats.call_time, summary_of(stats)
    times = stats.apply_time
    dot = next(node for node in times if type(node.op).__name__ == "Dot")
    cheapest = min(times.values())
    assert times[dot] > 5 * cheapest, summary_of(stats)  # 400^3 multiply-adds against a number


def test_a_failed_call_leaves_the_profile_as_it_was(backend):
    f, w = training_step(backend, profile=True)
    good = np.ones((40, 40))
    f(good)
    stats = f.profile
    before = (stats.call_count, stats.call_time, stats.backend_time, dict(stats.apply_time), w.get_value())
    with pytest.raises(ValueError):
        f(np.ones((40, 3)))  # the product's shapes disagree inside the backend
    with pytest.raises(TypeError):
        f(np.ones(3))  # refused before the backend
    assert stats.failed_calls == 2
    assert (stats.call_count, stats.call_time, stats.backend_time) == before[:3]
    assert stats.apply_time == before[3]
    np.testing.assert_array_equal(w.get_value(), before[4])
    f(good)
    assert stats.call_count == 2 and all(c == 2 for c in stats.apply_callcount.values())
    assert "Failed calls (not in these times): 2" in summary_of(stats)


def test_each_function_has_its_own_profile_and_a_shared_stats_gathers_several(backend):
    x = T.vector("x")
    f = arignote.function([x], T.exp(x), backend=backend, profile=True)
    g = arignote.function([x], T.sin(x) + 1, backend=backend, profile=True)
    value = np.arange(4.0)
    f(value), f(value), g(value)
    assert f.profile is not g.profile
    assert (f.profile.call_count, g.profile.call_count) == (2, 1)
    assert set(f.profile.apply_time) == set(f.maker.fgraph.apply_nodes)

    together = ProfileStats(atexit_print=False, message="both")
    f2 = arignote.function([x], T.exp(x), backend=backend, profile=together, name="f")
    g2 = arignote.function([x], T.sin(x) * 2, backend=backend, profile=together, name="g")
    f2(value), g2(value), g2(value)
    assert together.call_count == 3
    text = summary_of(together)
    assert "Message: both" in text and " f:0 Exp(x)" in text and " g:0 " in text
    assert f.profile.call_count == 2  # untouched by the others


def test_config_profile_turns_profiling_on_and_the_argument_wins(backend, monkeypatch):
    x = T.vector("x")
    monkeypatch.setattr(config, "profile", True, raising=False)
    f = arignote.function([x], x * 2, backend=backend)
    assert isinstance(f.profile, ProfileStats)
    assert arignote.function([x], x * 2, backend=backend, profile=False).profile is None
    monkeypatch.setattr(config, "profile", False, raising=False)
    plain = arignote.function([x], x * 2, backend=backend)
    assert plain.profile is None
    named = arignote.function([x], x * 2, backend=backend, profile="the doubling")
    named(np.ones(2))
    assert "Message: the doubling" in summary_of(named.profile)
    with pytest.raises(TypeError, match="profile"):
        arignote.function([x], x * 2, backend=backend, profile=2.5)


def test_profiles_are_printed_at_exit_when_config_profile_is_set(monkeypatch, capsys, tmp_path):
    x = T.vector("x")
    f = arignote.function([x], x + 1, backend="reference", profile="printed at exit")
    f(np.ones(3))
    monkeypatch.setattr(config, "profile", False, raising=False)
    profiling._atexit_print()
    assert "printed at exit" not in capsys.readouterr().err
    monkeypatch.setattr(config, "profile", True, raising=False)
    profiling._atexit_print()
    assert "Message: printed at exit" in capsys.readouterr().err
    destination = tmp_path / "profiles.txt"
    config.profiling.destination = str(destination)  # Theano's flag: where the profiles go
    try:
        profiling._atexit_print()
    finally:
        config.profiling.destination = "stderr"
    assert "Message: printed at exit" in destination.read_text()


def test_loops_and_branches_are_timed_as_one_node(backend):
    x, flag = T.vector("x"), T.scalar("flag")
    out, _ = arignote.scan(lambda v, h: T.tanh(h + v), sequences=x, outputs_info=T.constant(0.0))
    y = ifelse(T.gt(flag, 0), out[-1], x.sum())
    f = arignote.function([x, flag], [y, out], backend=backend, profile=True)  # out: the Scan is no branch's
    f(np.arange(5.0), np.float64(1.0))
    stats = f.profile
    kinds = {type(node.op).__name__ for node in stats.apply_time}
    assert {"Scan", "IfElse"} <= kinds
    assert all(t > 0 for t in stats.apply_time.values())
    assert "includes the nodes of its inner graphs" in summary_of(stats)


def test_check_pickle_and_copy_keep_profiling(backend):
    f, _ = training_step(backend, profile=True, check=True)
    x = np.ones((40, 40))
    f(x)
    assert f.profile.call_count == 1 and f.profile.per_node
    loaded = pickle.loads(pickle.dumps(f))
    loaded(x)
    assert loaded.profile.call_count == 2 and f.profile.call_count == 1
    copied = f.copy()
    copied(x)
    assert copied.profile is not f.profile
    assert copied.profile.call_count == 1 and f.profile.call_count == 1


def test_a_plain_function_has_no_profile_and_no_timer_code(backend):
    x = T.matrix("x")
    plain = arignote.function([x], T.exp(x) * 2, backend=backend)
    profiled = arignote.function([x], T.exp(x) * 2, backend=backend, profile=True)
    assert plain.profile is None
    if backend == "c":
        assert "ari_clock_ns" not in plain.backend_source and "ari_ns[0] +=" in profiled.backend_source
    if backend == "numba":
        assert "_clock" not in plain.backend_source and "_ns[0] = _now - _then" in profiled.backend_source
    value = np.random.default_rng(2).standard_normal((3, 3))
    np.testing.assert_array_equal(plain(value), profiled(value))


def test_large_inputs_take_the_same_threaded_loops_as_the_plain_program(backend):
    x, y = T.matrix("x"), T.matrix("y")
    outputs = [T.exp(x) * T.tanh(y) + 1, (x * y).sum()]  # no product: the plan gives the loop threads
    plain = arignote.function([x, y], outputs, backend=backend)
    profiled = arignote.function([x, y], outputs, backend=backend, profile=True)
    a = np.random.default_rng(3).standard_normal((1100, 1000))  # over PARALLEL_MIN elements
    for got, wanted in zip(profiled(a, a), plain(a, a)):
        np.testing.assert_allclose(got, wanted, rtol=1e-12)
    assert profiled.profile.call_count == 1 and all(t > 0 for t in profiled.profile.apply_time.values())
    if backend == "numba":  # each node's segment has its prange twin, picked as the plain program picks
        assert "_twin(segment0, segment0_parallel, _large, " in profiled.backend_source


def test_a_profiled_call_keeps_the_blas_on_one_core_as_the_plain_call_does(backend):
    """A graph whose convolutions split their images between threads runs its BLAS on one core for the
    whole call (plan.blas_one_core); a profiled call must run the same way, or it times OpenBLAS's
    threads fighting the images' (a LeNet step profiled at 26 ms on c, 11 ms unprofiled)."""
    from arignote.backends import blas
    from arignote.core.plan import plan_of

    x, w = T.tensor4("x"), T.tensor4("w")
    out = T.nnet.conv2d(x, w)
    cost = T.dot(out.flatten(2), T.ones((out.shape[1] * out.shape[2] * out.shape[3], 3))).sum()
    outputs = [cost, T.grad(cost, w)]
    rng = np.random.default_rng(0)
    values = rng.standard_normal((32, 4, 20, 20)), rng.standard_normal((8, 4, 5, 5))
    plain = arignote.function([x, w], outputs, backend=backend)
    profiled = arignote.function([x, w], outputs, backend=backend, profile=True)
    assert plan_of(profiled.maker.fgraph).blas_one_core  # the convolutions' images are worth threads
    seen = {}
    for f in (plain, profiled):
        f(*values)  # compiled; the BLAS's solo function is set
        solo = blas._solo_now[0]
        seen[f] = []
        blas._solo_now[0] = lambda begin: (seen[f].append(begin), solo(begin))
        try:
            got = f(*values)
        finally:
            blas._solo_now[0] = solo
    assert seen[profiled] == seen[plain]
    if backend != "reference":  # the compiled backends' calls: one core, then the BLAS's threads back
        assert seen[plain][:1] == [1] and seen[plain][-1:] == [0]
    for a, b in zip(got, plain(*values)):
        np.testing.assert_allclose(a, b, rtol=1e-10)


class CallsOnly(Backend):
    """A third-party backend whose compile() takes no ``profile``: its profile has the call totals only."""

    name = "calls-only"

    def compile(self, fgraph):
        program = registry.get("reference").compile(fgraph)
        return lambda inputs: program(inputs)


@pytest.fixture
def calls_only():
    registry.register(CallsOnly())
    yield "calls-only"
    registry._backends.pop("calls-only", None)
    registry._availability.pop("calls-only", None)


def test_a_backend_without_node_timers_still_profiles_its_calls(calls_only):
    x = T.vector("x")
    f = arignote.function([x], T.exp(x) + 1, backend=calls_only, profile=True)
    np.testing.assert_allclose(f(np.zeros(3)), np.full(3, 2.0))
    stats = f.profile
    assert not stats.per_node and stats.call_count == 1 and stats.backend_time > 0
    assert all(t == 0 for t in stats.apply_time.values())
    text = summary_of(stats)
    assert "Backend 'calls-only' records no per-node times" in text and "\nApply\n" not in text


def test_a_profile_without_calls_says_so():
    x = T.vector("x")
    f = arignote.function([x], x * 3, backend="reference", profile=True)
    assert "No call has returned yet" in summary_of(f.profile)
