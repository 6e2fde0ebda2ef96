"""The `arignote` command (console script and `python -m arignote`) and the ARIGNOTE_ settings."""

import sys
from pathlib import Path

import pytest

from arignote import config
from arignote.cli import main
from arignote.core.config import Config
from arignote.core.plugins import registry

from plugin_kit import backends_table, plugins, python, run, zoo  # noqa: F401  (plugins is a fixture)

CONSOLE_SCRIPT = Path(sys.executable).with_name("arignote")


@pytest.mark.parametrize("command", [[CONSOLE_SCRIPT, "backends"], [sys.executable, "-m", "arignote", "backends"]],
                         ids=["console-script", "python-m"])
def test_backends_lists_reference_as_usable_and_default(command):
    result = run(command)
    assert result.returncode == 0, result.stderr
    rows, rest = backends_table(result.stdout)
    assert rows["reference"][0]
    # c is the default where a C compiler works, reference elsewhere
    defaults = [name for name, (_, is_default, _) in rows.items() if is_default]
    assert defaults == [registry.default_name()] == ["c" if rows["c"][0] else "reference"]
    assert rest == []


def test_backends_reports_third_party_unusable_and_broken_plugins(tmp_path):
    result = run([sys.executable, "-m", "arignote", "backends"], pythonpath=zoo(tmp_path), ARIGNOTE_BACKEND="toy")
    assert result.returncode == 0, result.stderr
    rows, rest = backends_table(result.stdout)
    assert rows["reference"] == (True, False, "")
    assert rows["toy"] == (True, True, "")  # usable, and priority 5 beats reference's 0
    assert rows["nocc"] == (False, False, "no compiler")  # priority 100, but unusable
    usable, is_default, notes = rows["frob"]
    assert not usable and not is_default and "ImportError: needs libfrobnicate" in notes
    usable, is_default, notes = rows["hooky"]
    assert not usable and not is_default and "RuntimeError: GPU driver too old" in notes
    assert rest == ["ARIGNOTE_BACKEND=toy selects 'toy' for every function"]


@pytest.mark.parametrize("selected, reason", [("nope", "no backend named 'nope'; installed: "),
                                              ("nocc", "not usable here: no compiler"),
                                              ("frob", "broken: plugin 'frob_backend' could not be loaded")])
def test_backends_exits_1_when_env_var_selects_what_cannot_be_used(selected, reason, plugins, tmp_path,
                                                                   monkeypatch, capsys):
    # in-process: the subprocess tests above already show that the command reads ARIGNOTE_BACKEND
    zoo(tmp_path)
    registry.reset()
    monkeypatch.setattr(config, "backend", selected)
    assert main(["backends"]) == 1
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"ARIGNOTE_BACKEND={selected} cannot be used: ") and reason in last


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "backends" in capsys.readouterr().out


def test_env_floatx_float32_sets_config_floatx():
    report = python("""
        import json
        import arignote
        import arignote.tensor as T
        print(json.dumps([arignote.config.floatX, T.vector("v").dtype, (T.scalar("s") * 2).dtype]))
    """, ARIGNOTE_FLOATX="float32")
    assert report == ["float32", "float32", "float32"]


def test_invalid_floatx_raises_value_error_naming_the_allowed_values(monkeypatch):
    with pytest.raises(ValueError, match=r"float64.*float32.*'float16'"):
        Config({"ARIGNOTE_FLOATX": "float16"})
    monkeypatch.setattr(config, "floatX", config.floatX)  # restored afterwards whatever happens
    before = config.floatX
    with pytest.raises(ValueError, match=r"float64.*float32.*'half'"):
        config.floatX = "half"
    assert config.floatX == before
    result = run([sys.executable, "-c", "import arignote"], ARIGNOTE_FLOATX="float16")
    assert result.returncode != 0
    assert "ValueError: floatX must be one of ('float64', 'float32')" in result.stderr
