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

TINY = bench.Sizes(mlp=(12, 8, 5), batches=(3, 6), vector=1000, logits=(16, 10), gemm=64, copy_mb=1,
                   scan_steps=300, lstm=(5, 4, 6, 3), lenet=(3, 16))


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
            flops = (workloads._lstm_flops(TINY) if name == "lstm-train" else workloads.lenet_flops(TINY)
                     if name == "lenet-train" else
                     workloads._mlp_flops(TINY, TINY.batches[name.endswith("500")]))
            assert ref["limit_fraction"] == pytest.approx(flops / ref["median_s"] / limits["gemm_flops"])
        elif workload.limit == "bandwidth":
            assert ref["unit"] == "B/s" and ref["limit_fraction"] == pytest.approx(ref["rate"] / limits["bandwidth"])
        else:
            assert ref["limit_fraction"] is None
        assert ref["goal"] is ref["goal_met"] is None  # goals are set for c and numba only
        assert any(line.split()[:2] == [name, "reference"] and f"{ref['ratio']:.2f}" in line
                   for line in table.splitlines())
    assert rows_of(report, "call-overhead")["reference"]["rate"] == pytest.approx(
        1 / rows_of(report, "call-overhead")["reference"]["median_s"])
    scan = rows_of(report, "scan-overhead")["reference"]
    assert scan["unit"] == "s/step" and scan["rate"] == pytest.approx(scan["median_s"] / TINY.scan_steps)
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

    def spawn(target, sizes, directory, program):
        calls.append((target.name, directory, os.listdir(directory), program))
        open(os.path.join(directory, "compiled"), "w").close()
        return {"seconds": 0.01 if program == "mlp-train-b20" else 0.02, "error": None}

    monkeypatch.setattr(harness, "_spawn_compile", spawn)
    compiles = [bench.WORKLOADS[name] for name in ("compile-cold", "compile-warm", "compile-lstm-cold")]
    rows = harness.run_compile(compiles, [bench.Target("reference", "arignote")], TINY, repeats=3)
    assert [(r["workload"], r["backend"], r["ratio"], r["median_s"]) for r in rows] == [
        ("compile-cold", "numpy", 1, 0.01), ("compile-cold", "reference", 1, 0.01),
        ("compile-warm", "numpy", 1, 0.01), ("compile-warm", "reference", 1, 0.01),
        ("compile-lstm-cold", "numpy", 1, 0.02), ("compile-lstm-cold", "reference", 1, 0.02)]
    for name in ("numpy", "reference"):
        mine = [(d, listing) for n, d, listing, program in calls if n == name and program == "mlp-train-b20"]
        cold, warm = mine[:3], mine[3:]
        assert len({d for d, _ in cold}) == 3 and all(listing == [] for _, listing in cold)
        assert [d for d, _ in warm] == [cold[0][0]] * 3 and all(listing == ["compiled"] for _, listing in warm)
        lstm = [(d, listing) for n, d, listing, program in calls if n == name and program == "lstm-train"]
        assert len(lstm) == 3 and all(listing == [] for _, listing in lstm)  # cold only, caches of its own
        assert not {d for d, _ in lstm} & {d for d, _ in mine}
    assert not any(os.path.exists(d) for _, d, _, _ in calls)  # the temporary caches are removed
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


# --- the loop workloads: scan-overhead, lstm-train, compile-lstm-cold


def test_the_lstm_numpy_baseline_against_finite_differences():
    """The hand-written BPTT: the step it takes against central differences of its own loss (float32,
    so a few coordinates and a loose tolerance; arignote's symbolic gradient checks it everywhere)."""
    sizes = bench.Sizes(lstm=(3, 2, 4, 2))
    data = workloads._lstm_data(sizes)
    moved = workloads._lstm_numpy(data, None)().result()[1:]

    def loss(name, index, delta):
        changed = {**data, name: data[name].copy()}
        changed[name][index] += delta
        cost = workloads._lstm_numpy(changed, None)().run()
        return float(cost)

    eps = 1e-2
    for k, name in enumerate(workloads.LSTM_PARAMS):
        for index in [(0,) * data[name].ndim, tuple(n - 1 for n in data[name].shape)]:
            slope = (loss(name, index, eps) - loss(name, index, -eps)) / (2 * eps)
            assert -workloads.LSTM_LR * slope == pytest.approx(moved[k][index], rel=0.05, abs=1e-6), (name, index)


def test_the_lstm_check_sees_a_truncated_gradient():
    """Backpropagation through the last step only is a different step: the check must see it."""
    data = workloads._lstm_data(TINY)
    want = workloads._lstm_numpy(data, None)().result()
    assert bench.mismatch(workloads.LSTM_IMPLS["arignote"](data, "reference")().result(), want) is None
    import arignote

    real = arignote.scan
    truncated = lambda *args, **kwargs: real(*args, truncate_gradient=1, **kwargs)  # noqa: E731
    api = workloads._arignote_api("reference")
    api.scan = truncated
    got = workloads._lstm_graph(api, data)().result()
    assert np.allclose(got[0], want[0])  # same loss
    assert bench.mismatch(got, want).startswith("wrong result 1")


def test_the_loop_workloads_on_every_backend(backend):
    """scan-overhead and lstm-train on tiny sizes, verified against their NumPy baselines (the harness
    does that before timing), on each usable backend; c and numba rows carry their goal."""
    out = io.StringIO()
    report = bench.run_bench(workloads=["scan-overhead", "lstm-train"], backends=[backend], sizes=TINY, repeats=2,
                             min_time=0.0002, out=out, progress=lambda what: None)
    table = out.getvalue()
    for name, goal in [("scan-overhead", "<= 5 ns/step"), ("lstm-train", "ratio <= 0.7")]:
        row = rows_of(report, name)[backend]
        assert row["status"] == "ok", row["error"]
        assert row["ratio"] == pytest.approx(row["median_s"] / rows_of(report, name)["numpy"]["median_s"])
        line = next(line for line in table.splitlines() if line.split()[:2] == [name, backend])
        if backend in ("c", "numba"):
            assert row["goal"] == goal and row["goal_met"] in (True, False)
            assert line.endswith(f"{goal}: {'met' if row['goal_met'] else 'MISSED'}")
        else:
            assert row["goal"] is None
    scan = rows_of(report, "scan-overhead")[backend]
    assert scan["unit"] == "s/step" and f"{bench.report._seconds(scan['rate'])}/step" in table


def test_goals_and_the_time_per_step_in_the_table():
    workload = bench.Workload("w", "", steps=lambda s: 1000, goal=workloads.Goal(("c",), "rate", 5e-9))

    def fill(backend, times):
        row = bench.report.new_row(workload, bench.Target(backend, "arignote"))
        return bench.report.fill_row(row, times, 8e-6, workload, None, TINY)

    c = fill("c", [4e-6, 4e-6])
    assert c["rate"] == pytest.approx(4e-9) and c["ratio"] == pytest.approx(0.5)
    assert (c["unit"], c["goal"], c["goal_met"]) == ("s/step", "<= 5 ns/step", True)
    slow = fill("c", [6e-6])
    assert slow["goal_met"] is False
    ref = fill("reference", [6e-6])
    assert ref["goal"] is ref["goal_met"] is None
    compile_goal = bench.WORKLOADS["compile-lstm-cold"].goal
    assert bench.report.goal_text(compile_goal) == "<= 3 s" and compile_goal.backends == ("c",)
    report = {"machine": harness.machine(), "limits": {"gemm_flops": 1e9, "gemm_n": 64, "bandwidth": 1e9,
              "copy_bytes": 1 << 20}, "quick": True, "date": "today", "repeats": 1, "results": [c, slow, ref],
              "wall_s": 1.0}
    out = io.StringIO()
    bench.print_table(report, out)
    lines = out.getvalue().splitlines()
    assert next(line for line in lines if line.startswith("workload")).split()[-1] == "goal"
    assert any(line.startswith("w ") and line.endswith("<= 5 ns/step: met") and "4 ns/step" in line for line in lines)
    assert any(line.endswith("<= 5 ns/step: MISSED") and "6 ns/step" in line for line in lines)


def test_goals_on_the_share_of_the_limit_are_judged_once_the_limits_are_known():
    """A goal on the "of limit" column (``at_least``: the share of the machine's GEMM peak or bandwidth)
    is judged against the limits measured at the run's end: not yet after the times, met or missed after."""
    workload = bench.Workload("w", "", limit="gemm", work=lambda s, d: 1e9,
                              goal=workloads.Goal(("c",), "limit_fraction", 0.9, at_least=True))
    rows = []
    for seconds in (1.0, 1.2):  # 1 GFLOP in 1 s and in 1.2 s: 100 % and 83 % of a 1 GFLOP/s peak
        row = bench.report.fill_row(bench.report.new_row(workload, bench.Target("c", "arignote")), [seconds], 1.0,
                                    workload, 1e9, TINY)
        assert (row["goal"], row["goal_met"]) == ("of limit >= 90%", None)  # no limits yet
        rows.append(row)
    bench.report.apply_limits(rows, {"gemm_flops": 1e9, "bandwidth": 1e9})
    assert [bench.report.judge_goals(row, workload, TINY)["goal_met"] for row in rows] == [True, False]


def test_the_speed_goals_of_the_mlp_and_elemwise_rows():
    """mlp-train-b20 at most 0.5 x NumPy (c, numba), mlp-train-b500 at 90 % of the GEMM peak or more (c,
    numba), elemwise-4m at 75 % of the copy bandwidth or more (c): each judged in a run's table (on c:
    judging does not depend on the backend, and numba's compiles would double the time)."""
    goals = {name: bench.WORKLOADS[name].goal for name in ("mlp-train-b20", "mlp-train-b500", "elemwise-4m")}
    assert goals["mlp-train-b20"][0] == workloads.Goal(("c", "numba"), "ratio", 0.5)
    assert goals["mlp-train-b500"] == workloads.Goal(("c", "numba"), "limit_fraction", 0.9, at_least=True)
    assert goals["elemwise-4m"] == workloads.Goal(("c",), "limit_fraction", 0.75, at_least=True)
    out = io.StringIO()
    report = bench.run_bench(workloads=list(goals), backends=["c"], sizes=TINY, repeats=2, min_time=0.0002, out=out,
                             progress=lambda what: None, memory=False)
    table = out.getvalue().splitlines()
    for name, text, measure, met in [
            ("mlp-train-b20", "ratio <= 0.5", "ratio", lambda v: v <= 0.5),
            ("mlp-train-b500", "of limit >= 90%", "limit_fraction", lambda v: v >= 0.9),
            ("elemwise-4m", "of limit >= 75%", "limit_fraction", lambda v: v >= 0.75)]:
        row = rows_of(report, name)["c"]
        assert row["status"] == "ok", row["error"]
        assert row["goals"][0] == (text, met(row[measure]))
        line = next(line for line in table if line.split()[:2] == [name, "c"])
        assert f"{text}: {'met' if met(row[measure]) else 'MISSED'}" in line
        assert rows_of(report, name)["numpy"]["goal"] is None


def test_the_machine_line_names_the_blas_kernels_that_run():
    """The GEMM peak depends on OpenBLAS's kernel set (AVX2 ones reach half of an AVX-512 machine's), so
    the report names the set NumPy's OpenBLAS runs, as threadpoolctl reads it, and who chose it."""
    import threadpoolctl

    from arignote.backends import blas

    found = blas.entry_points()
    openblas = [lib for lib in threadpoolctl.threadpool_info() if lib["internal_api"] == "openblas"
                and os.path.basename(lib["filepath"]).startswith("libscipy_openblas64_")]
    assert found["kernel_set"] is not None and found["kernel_set"] == openblas[0]["architecture"]
    line = harness.machine()["blas"]
    assert f", {found['kernel_set']} kernels" in line
    assert ("OPENBLAS_CORETYPE=" in line) == bool(os.environ.get("OPENBLAS_CORETYPE"))


def test_the_gemm_limit_is_the_fastest_product_of_the_run():
    """The GEMM peak is NumPy's product or a backend's where that is faster (arignote's own kernels
    beat an OpenBLAS held to narrower vectors than the CPU's), named in the limits line; a backend
    that fails to run it is left out."""
    limits = harness.measure_limits(TINY, 3, 0.001, ["reference", "no such backend"])
    assert limits["gemm_by"] in ("numpy", "reference") and limits["gemm_n"] == TINY.gemm
    assert limits["gemm_flops"] >= limits["gemm_numpy_flops"] > 0
    slow = dict(limits, gemm_flops=1.0, gemm_by="numpy")
    fast = dict(limits, gemm_flops=2e12, gemm_by="c", gemm_numpy_flops=1e12)
    best = harness.best_limits(fast, slow)
    assert best["gemm_by"] == "c" and best["gemm_flops"] == 2e12 and best["gemm_numpy_flops"] == 1e12
    report = {"machine": harness.machine(), "limits": best, "quick": True, "date": "today", "repeats": 1,
              "results": [], "wall_s": 1.0}
    out = io.StringIO()
    bench.print_table(report, out)
    assert "float32 GEMM 2000.0 GFLOP/s (n=64, c's; NumPy's 1000.0)" in out.getvalue()
