"""`arignote bench` on tiny sizes: the table and JSON, the ratios, the correctness check, the command."""

import io
import json
import os
import statistics
import subprocess
import sys

import numpy as np
import pytest

from arignote import bench
from arignote.bench import harness, workloads
from arignote.cli import main

TINY = bench.Sizes(mlp=(12, 8, 5), batches=(3, 6), vector=1000, logits=(16, 10), gemm=64, copy_mb=1)


def tiny(**options):
    out = io.StringIO()
    report = bench.run_bench(backends=["reference"], sizes=TINY, repeats=2, min_time=0.0002, out=out,
                             progress=lambda what: None, **options)
    return report, out.getvalue()


def rows_of(report, workload):
    return {row["backend"]: row for row in report["results"] if row["workload"] == workload}


def test_every_workload_has_a_baseline_row_and_a_verified_reference_row(tmp_path):
    report, table = tiny(json_path=tmp_path / "bench.json")
    assert [w["workload"] for w in report["results"][::2]] == list(bench.WORKLOADS)
    limits = report["limits"]
    assert limits["gemm_flops"] > 0 and limits["bandwidth"] > 0
    for name, workload in bench.WORKLOADS.items():
        rows = rows_of(report, name)
        assert set(rows) == {"numpy", "reference"}
        base, ref = rows["numpy"], rows["reference"]
        assert base["status"] == ref["status"] == "ok", (base["error"], ref["error"])
        assert base["ratio"] == 1
        assert ref["median_s"] == statistics.median(ref["times_s"]) > 0
        assert ref["ratio"] == pytest.approx(ref["median_s"] / base["median_s"])
        if workload.limit == "gemm":
            flops = workloads._mlp_flops(TINY, TINY.batches[name.endswith("500")])
            assert ref["limit_fraction"] == pytest.approx(flops / ref["median_s"] / limits["gemm_flops"])
        elif workload.limit == "bandwidth":
            assert ref["unit"] == "B/s" and ref["limit_fraction"] == pytest.approx(ref["rate"] / limits["bandwidth"])
        else:
            assert ref["limit_fraction"] is None
        assert any(line.split()[:2] == [name, "reference"] and f"{ref['ratio']:.2f}" in line
                   for line in table.splitlines())
    assert rows_of(report, "call-overhead")["reference"]["rate"] == pytest.approx(
        1 / rows_of(report, "call-overhead")["reference"]["median_s"])
    assert json.loads((tmp_path / "bench.json").read_text())["results"] == json.loads(json.dumps(report["results"]))
    assert "limits: float32 GEMM" in table and "wall time" in table


def test_a_wrong_result_is_a_failure_row_not_a_speed(monkeypatch):
    real = workloads.ELEMWISE_IMPLS["arignote"]

    def off_by_one_percent(data, backend):
        compile = real(data, backend)

        def wrong():
            run = compile().run
            return bench.Compiled(lambda: run() * np.float32(1.01))
        return wrong

    def broken(data, backend):
        def compile():
            raise RuntimeError("no such op")
        return compile

    monkeypatch.setitem(workloads.ELEMWISE_IMPLS, "arignote", off_by_one_percent)
    monkeypatch.setitem(workloads.REDUCE_IMPLS, "arignote", broken)
    report, table = tiny(workloads=["elemwise-4m", "reduce-4m", "call-overhead"])
    wrong = rows_of(report, "elemwise-4m")["reference"]
    assert wrong["status"] == "wrong" and wrong["median_s"] is None and wrong["ratio"] is None
    assert "max |error| / max |expected| = 0.01" in wrong["error"]
    assert rows_of(report, "reduce-4m")["reference"]["status"] == "error"
    assert "RuntimeError: no such op" in rows_of(report, "reduce-4m")["reference"]["error"]
    assert rows_of(report, "call-overhead")["reference"]["status"] == "ok"
    assert any(line.split()[:4] == ["elemwise-4m", "reference", "FAILED", "(wrong):"] for line in table.splitlines())


def test_the_mlp_check_sees_a_wrong_gradient():
    data = workloads._mlp_data(TINY, 3)
    want = workloads._mlp_numpy(data, None)().result()
    assert bench.mismatch(workloads.MLP_IMPLS["arignote"](data, "reference")().result(), want) is None
    for k, name in [(1, "W1"), (3, "W2")]:  # a step that forgets the L2 penalty's gradient of one matrix
        got = list(want)
        got[k] = want[k] + workloads.LR * 2 * workloads.L2 * data[name]
        assert bench.mismatch(got, want).startswith(f"wrong result {k}: |error| / |expected| (2-norms)")
    tail = want[1].copy()
    tail[-1, -1] += 0.01 * np.abs(want[1]).max()  # one entry off
    assert bench.mismatch([want[0], tail], want[:2]).startswith("wrong result 1: max |error|")
    assert bench.mismatch([np.array(np.nan)], [np.array(1.0)], 1).startswith("wrong result 0")
    assert bench.mismatch([np.zeros(3)], [np.zeros(4)], 1) == "result 0 has shape (3,), expected (4,)"


def test_compile_cold_gets_new_empty_caches_and_warm_reuses_a_filled_one(monkeypatch):
    calls = []

    def spawn(target, sizes, directory):
        calls.append((target.name, directory, os.listdir(directory)))
        open(os.path.join(directory, "compiled"), "w").close()
        return {"seconds": 0.01, "error": None}

    monkeypatch.setattr(harness, "_spawn_compile", spawn)
    compiles = [bench.WORKLOADS["compile-cold"], bench.WORKLOADS["compile-warm"]]
    rows = harness.run_compile(compiles, [bench.Target("reference", "arignote")], TINY, repeats=3)
    assert [(r["workload"], r["backend"], r["ratio"]) for r in rows] == [
        ("compile-cold", "numpy", 1), ("compile-cold", "reference", 1),
        ("compile-warm", "numpy", 1), ("compile-warm", "reference", 1)]
    for name in ("numpy", "reference"):
        mine = [(d, listing) for n, d, listing in calls if n == name]
        cold, warm = mine[:3], mine[3:]
        assert len({d for d, _ in cold}) == 3 and all(listing == [] for _, listing in cold)
        assert [d for d, _ in warm] == [cold[0][0]] * 3 and all(listing == ["compiled"] for _, listing in warm)
    assert not any(os.path.exists(d) for _, d, _ in calls)  # the temporary caches are removed
    assert harness._cache_env("/tmp/x")["ARIGNOTE_CACHE_DIR"] == "/tmp/x"


def test_the_bench_subcommand(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(bench.QUICK, "sizes", TINY)
    monkeypatch.setitem(bench.QUICK, "min_time", 0.0002)
    path = tmp_path / "quick.json"
    assert main(["bench", "--quick", "--backend", "reference", "--workload", "call-overhead,reduce-4m",
                 "--repeats", "2", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "arignote bench --quick" in out and "call-overhead" in out and "reduce-4m" in out
    report = json.loads(path.read_text())
    assert report["quick"] and report["repeats"] == 2 and report["backends"] == ["reference"]
    assert {(r["workload"], r["backend"]) for r in report["results"]} == {
        (w, b) for w in ("reduce-4m", "call-overhead") for b in ("numpy", "reference")}
    assert main(["bench", "--workload", "nope"]) == 2
    assert "no workload named 'nope'; workloads: mlp-train-b20" in capsys.readouterr().err
    assert main(["bench", "--backend", "nope"]) == 2
    err = capsys.readouterr().err  # the usable backends listed depend on what is installed here
    assert "no backend named 'nope'; usable here: numpy, " in err and "reference" in err


def test_python_m_arignote_bench_lists_workloads_and_backends():
    done = subprocess.run([sys.executable, "-m", "arignote.bench", "--list"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert names[:-1] == list(bench.WORKLOADS)
    assert done.stdout.splitlines()[-1].startswith("backends: numpy (baseline), ") and "reference" in done.stdout
