"""Peers (PyTensor, JAX, PyTorch) are timed each in a process of their own, beside a NumPy baseline of
their own. Not installed here: a fake peer, whose implementations a module adds in that process (a
``Target``'s ``module``), stands in for them, so that the child process is really what runs them."""

import io
import os

import pytest

from arignote import bench
from arignote.bench import footprint

from test_bench import TINY, rows_of

FAKE_PEER = """
import os

from arignote.bench import workloads


def logged(make):
    def fake(data, backend):
        with open(os.environ["FAKE_PEER_LOG"], "a") as log:
            log.write(f"{os.getpid()} {backend}\\n")
        return make(data, None)
    return fake


workloads.ELEMWISE_IMPLS["fake"] = logged(workloads.ELEMWISE_IMPLS["numpy"])
workloads.MLP_IMPLS["fake"] = logged(workloads.MLP_IMPLS["numpy"])
"""


@pytest.fixture
def fake_peer(tmp_path, monkeypatch):
    (tmp_path / "fake_peer.py").write_text(FAKE_PEER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("FAKE_PEER_LOG", str(tmp_path / "calls.log"))
    return bench.Target("fakepeer", "fake", module="fake_peer"), tmp_path / "calls.log"


def run(targets, names):
    out = io.StringIO()
    report = bench.run_bench(targets=targets, workloads=names, sizes=TINY, repeats=2, min_time=0.0002, out=out,
                             progress=lambda what: None)
    return report, out.getvalue()


def test_a_peer_runs_in_a_process_of_its_own_against_its_own_baseline(fake_peer):
    peer, log = fake_peer
    names = ["mlp-train-b20", "elemwise-4m", "call-overhead"]
    report, table = run([bench.Target("reference", "arignote"), peer], names)
    calls = [line.split() for line in log.read_text().splitlines()]
    pids = {int(pid) for pid, _ in calls}
    assert len(pids) == 1 and os.getpid() not in pids  # every workload in one child, none here
    assert {backend for _, backend in calls} == {"fakepeer"}
    for name in names:
        rows = rows_of(report, name)
        assert list(rows) == ["numpy", "reference", "fakepeer"]
        row, base = rows["fakepeer"], rows["numpy"]
        assert not rows["reference"]["own_process"] and rows["reference"]["baseline_median_s"] == base["median_s"]
        if name == "call-overhead":  # the fake peer has no implementation of it
            assert row["status"] == "error" and "no call-overhead implementation for fake" in row["error"]
            continue
        assert row["status"] == "ok", row["error"]
        assert row["own_process"] and row["baseline_median_s"] != base["median_s"]  # its own baseline
        assert row["ratio"] == pytest.approx(row["median_s"] / row["baseline_median_s"])
        assert row["limit_fraction"] is not None  # the limits measured here apply
        if footprint.supported():  # measured in that process too
            assert row["peak_extra_bytes"] is not None and row["memory_error"] is None
        line = next(line for line in table.splitlines() if line.split()[:2] == [name, "fakepeer*"])
        assert f"{row['ratio']:.2f}" in line
    assert "* timed in a process of its own" in table


def test_a_peer_whose_process_fails_gives_failure_rows(fake_peer):
    report, table = run([bench.Target("broken", "fake", module="no_such_peer_module")], ["elemwise-4m"])
    row = rows_of(report, "elemwise-4m")["broken"]
    assert row["status"] == "error" and "No module named 'no_such_peer_module'" in row["error"]
    assert rows_of(report, "elemwise-4m")["numpy"]["status"] == "ok"
    assert "FAILED (error)" in table


def test_the_peers_are_the_targets_of_a_process_of_their_own():
    assert all(bench.harness.own_process(peer) for peer in bench.PEERS)
    assert not bench.harness.own_process(bench.BASELINE)
    assert not bench.harness.own_process(bench.Target("c", "arignote"))
