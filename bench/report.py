"""The report of ``arignote bench``: its rows (median, ratio to the NumPy baseline, rate, fraction of the
machine's limit, whether the workload's goal is met), the table, and the JSON file."""

import json
import statistics


# ---------------------------------------------------------------------------------------------------
# The rows


def new_row(workload, target, **fields):
    return {"workload": workload.name, "backend": target.name, "family": target.family, "status": "ok",
            "median_s": None, "ratio": None, "rate": None, "unit": None, "limit_fraction": None,
            "times_s": [], "error": None, "goal": None, "goal_met": None, **fields}


def fill_row(row, times, base_median, workload, work, sizes=None):
    median = statistics.median(times)
    row.update(median_s=median, times_s=times, ratio=median / base_median)
    if workload.limit:
        row.update(rate=work / median, unit={"gemm": "FLOP/s", "bandwidth": "B/s"}[workload.limit])
    elif workload.steps:
        row.update(rate=median / workload.steps(sizes), unit="s/step")
    elif workload.compile is None:
        row.update(rate=1 / median, unit="calls/s")
    goal = workload.goal
    if goal and row["backend"] in goal.backends:
        row.update(goal=goal_text(goal, row["unit"]), goal_met=row[goal.measure] <= goal.bound)
    return row


def goal_text(goal, unit=None):
    if goal.measure == "ratio":
        return f"ratio <= {goal.bound:g}"
    if goal.measure == "rate" and unit == "s/step":
        return f"<= {_seconds(goal.bound)}/step"
    return f"<= {_seconds(goal.bound)}"


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


def print_table(report, out):
    m, limits = report["machine"], report["limits"]
    out.write(f"arignote bench{' --quick' if report['quick'] else ''}, {report['date']}: {m['cpu']}, "
              f"{m['cores']} cores{' (virtual machine)' if m.get('virtual') else ''}, Python {m['python']}, NumPy {m['numpy']} ({m['blas']})\n")
    out.write(f"limits: float32 GEMM {limits['gemm_flops'] / 1e9:.1f} GFLOP/s (n={limits['gemm_n']}), "
              f"copy bandwidth {limits['bandwidth'] / 1e9:.2f} GB/s ({limits['copy_bytes'] >> 20} MB)\n")
    out.write(f"median of {report['repeats']} repeats; ratio = median / NumPy baseline's median (lower is better)\n\n")
    header = ("workload", "backend", "median", "ratio", "rate", "of limit", "goal")
    lines = []
    for row in report["results"]:
        if row["status"] != "ok":
            lines.append((row["workload"], row["backend"], f"FAILED ({row['status']}): {row['error']}"))
            continue
        fraction = row["limit_fraction"]
        goal = "" if row["goal"] is None else f"{row['goal']}: {'met' if row['goal_met'] else 'MISSED'}"
        lines.append((row["workload"], row["backend"], _seconds(row["median_s"]), f"{row['ratio']:.2f}",
                      _rate(row), "" if fraction is None else f"{100 * fraction:.0f}%", goal))
    widths = [max([len(header[k])] + [len(line[k]) for line in lines if len(line) > 3]) for k in range(7)]
    align = "<<>><><"

    def format_line(cells):
        if len(cells) == 3:
            return f"{cells[0]:<{widths[0]}}  {cells[1]:<{widths[1]}}  {cells[2]}"
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    out.write(format_line(header) + "\n")
    for line in lines:
        out.write(format_line(line) + "\n")
    load = report.get("other_load")
    out.write(f"\nwall time {report['wall_s']:.1f} s" + ("" if load is None else
              f"; other processes (and hypervisor steal) kept {load:.2f} of {m['cores']} cores busy on average"
              + (": expect noise" if load > 0.1 else "")) + "\n")


def write_json(report, path):
    """The full report, every time included."""
    with open(path, "w") as file:
        json.dump(report, file, indent=1)
