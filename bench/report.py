"""The report of ``arignote bench``: its rows (median, ratio to the NumPy baseline, rate, fraction of the
machine's limit, the peak extra memory of a call, whether the workload's goals are met), the table, and
the JSON file."""

import json
import statistics


# ---------------------------------------------------------------------------------------------------
# The rows


def new_row(workload, target, **fields):
    return {"workload": workload.name, "backend": target.name, "family": target.family, "status": "ok",
            "median_s": None, "ratio": None, "rate": None, "unit": None, "limit_fraction": None,
            "times_s": [], "error": None, "goal": None, "goal_met": None, "goals": None,  # [(text, met)]
            "baseline_median_s": None,  # the NumPy baseline's median the ratio is to (a peer's: its own)
            "own_process": False,  # measured in a process of its own (the peers)
            # bench/footprint.py: the peak of one call above what was live before it, what the function
            # keeps between calls, what a call leaves alive (bytes), or why they are missing
            "peak_extra_bytes": None, "held_bytes": None, "left_bytes": None, "memory_error": None, **fields}


def fill_row(row, times, base_median, workload, work, sizes=None):
    median = statistics.median(times)
    row.update(median_s=median, times_s=times, ratio=median / base_median, baseline_median_s=base_median)
    if workload.limit:
        row.update(rate=work / median, unit={"gemm": "FLOP/s", "bandwidth": "B/s"}[workload.limit])
    elif workload.steps:
        row.update(rate=median / workload.steps(sizes), unit="s/step")
    elif workload.compile is None:
        row.update(rate=1 / median, unit="calls/s")
    return judge_goals(row, workload, sizes)


def judge_goals(row, workload, sizes):
    """The row's goals (``Workload.goal``: one or a tuple), each met or not (None while its measure is
    missing: the memory is measured after the times, the limits at the run's end); ``goal_met`` when
    all are."""
    goal = workload.goal
    goals = [g for g in ([goal] if hasattr(goal, "measure") else goal or ()) if row["backend"] in g.backends]
    if goals:
        judged = []
        for g in goals:
            bound, value = g.bound(sizes) if callable(g.bound) else g.bound, row[g.measure]
            met = None if value is None else value >= bound if g.at_least else value <= bound
            judged.append((goal_text(g, row["unit"], bound), met))
        met = [m for _, m in judged]
        row.update(goal=", ".join(text for text, _ in judged), goals=judged,
                   goal_met=None if None in met else all(met))
    return row


def goal_text(goal, unit=None, bound=None):
    bound = goal.bound if bound is None else bound
    if goal.measure == "ratio":
        return f"ratio <= {bound:g}"
    if goal.measure == "limit_fraction":
        return f"of limit {'>=' if goal.at_least else '<='} {100 * bound:g}%"
    if goal.measure == "rate" and unit == "s/step":
        return f"<= {_seconds(bound)}/step"
    if goal.measure.endswith("_bytes"):
        return f"{goal.measure[:-6].replace('_', ' ')} <= {_bytes(bound)}"
    return f"<= {_seconds(bound)}"


def apply_limits(rows, limits):
    for row in rows:
        limit = {"FLOP/s": limits["gemm_flops"], "B/s": limits["bandwidth"]}.get(row["unit"])
        if limit and row["status"] == "ok":
            row["limit_fraction"] = row["rate"] / limit


# ---------------------------------------------------------------------------------------------------
# The table


def _seconds(s):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s / 1e-9:.3g} ns"


def _bytes(n):
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def _peak_extra(row):
    if row["memory_error"]:
        return "?"
    if row["peak_extra_bytes"] is None:
        return ""
    left = row["left_bytes"]
    return _bytes(max(row["peak_extra_bytes"], 0)) + (f" (left {_bytes(left)})" if left >= 1 << 16 else "")


def _rate(row):
    if row["unit"] == "FLOP/s":
        return f"{row['rate'] / 1e9:.3g} GFLOP/s"
    if row["unit"] == "B/s":
        return f"{row['rate'] / 1e9:.3g} GB/s"
    if row["unit"] == "calls/s":
        return f"{row['rate']:,.0f} calls/s"
    if row["unit"] == "s/step":
        return f"{_seconds(row['rate'])}/step"
    return ""


_MET = {True: "met", False: "MISSED", None: "not measured"}


def print_table(report, out):
    m, limits = report["machine"], report["limits"]
    out.write(f"arignote bench{' --quick' if report['quick'] else ''}, {report['date']}: {m['cpu']}, "
              f"{m['cores']} cores{' (virtual machine)' if m.get('virtual') else ''}, Python {m['python']}, NumPy {m['numpy']} ({m['blas']})\n")
    by = limits.get("gemm_by", "numpy")
    gemm = "NumPy's" if by == "numpy" else f"{by}'s; NumPy's {limits['gemm_numpy_flops'] / 1e9:.1f}"
    out.write(f"limits: float32 GEMM {limits['gemm_flops'] / 1e9:.1f} GFLOP/s (n={limits['gemm_n']}, {gemm}), "
              f"copy bandwidth {limits['bandwidth'] / 1e9:.2f} GB/s ({limits['copy_bytes'] >> 20} MB)\n")
    out.write(f"median of {report['repeats']} repeats; ratio = median / NumPy baseline's median (lower is better)\n\n")
    header = ("workload", "backend", "median", "ratio", "rate", "of limit", "peak extra", "goal")
    lines = []
    for row in report["results"]:
        if row["status"] != "ok":
            lines.append((row["workload"], row["backend"], f"FAILED ({row['status']}): {row['error']}"))
            continue
        fraction = row["limit_fraction"]
        goal = ", ".join(f"{text}: {_MET[met]}" for text, met in row.get("goals") or [])
        lines.append((row["workload"], row["backend"] + ("*" if row.get("own_process") else ""),
                      _seconds(row["median_s"]), f"{row['ratio']:.2f}", _rate(row),
                      "" if fraction is None else f"{100 * fraction:.0f}%", _peak_extra(row), goal))
    widths = [max([len(header[k])] + [len(line[k]) for line in lines if len(line) > 3]) for k in range(8)]
    align = "<<>><>><"

    def format_line(cells):
        if len(cells) == 3:
            return f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]}"
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    out.write(format_line(header) + "\n")
    for line in lines:
        out.write(format_line(line) + "\n")
    notes = []
    if any(row.get("own_process") for row in report["results"]):
        notes.append("* timed in a process of its own, its ratio to the NumPy baseline timed beside it there")
    if any(row.get("peak_extra_bytes") is not None for row in report["results"]):
        notes.append("peak extra: the most memory one call held above what was live before it (inputs, parameters, "
                     "compiled code),\n  within about 128 KB per core; (left N): new memory a call left alive")
    if any(row.get("memory_error") for row in report["results"]):
        notes.append("?: memory not measured: " + "; ".join(dict.fromkeys(
            f"{row['backend']}: {row['memory_error']}" for row in report["results"] if row.get("memory_error"))))
    if notes:
        out.write("\n" + "\n".join(notes) + "\n")
    load = report.get("other_load")
    out.write(f"\nwall time {report['wall_s']:.1f} s" + ("" if load is None else
              f"; other processes (and hypervisor steal) kept {load:.2f} of {m['cores']} cores busy on average"
              + (": expect noise" if load > 0.1 else "")) + "\n")


def write_json(report, path):
    """The full report, every time included."""
    with open(path, "w") as file:
        json.dump(report, file, indent=1)
