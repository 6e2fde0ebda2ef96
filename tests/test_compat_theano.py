"""The Theano layer: ``import theano`` and its submodules resolve to arignote's own modules, ``python -m
arignote.compat.theano`` runs a script, THEANO_FLAGS and .theanorc set arignote.config (and only through
the layer), Theano's flags that arignote has no use for are recorded, and theano.scalar and
theano.tensor.extra_ops work on every backend."""

import importlib
import json
import os
import subprocess
import sys
import textwrap
import types
import warnings

import numpy as np
import pytest

import arignote
import arignote.compat.theano as compat
import arignote.tensor as T
from arignote import config
from arignote.core.config import Config, ConfigWarning
from arignote.tensor import extra_ops

from checks import case, run_case

SUBMODULES = [
    "tensor", "tensor.nnet", "tensor.nnet.conv", "tensor.signal", "tensor.signal.pool", "tensor.signal.downsample",
    "tensor.shared_randomstreams", "tensor.extra_ops", "tensor.xlogx", "sandbox", "sandbox.rng_mrg", "ifelse",
    "scan_module", "gradient", "printing", "compile", "scalar",
]


@pytest.fixture
def theano_layer(monkeypatch):
    """The layer installed in this process (no .theanorc, no THEANO_FLAGS), removed afterwards."""
    monkeypatch.setenv("THEANORC", "")
    monkeypatch.delenv("THEANO_FLAGS", raising=False)
    compat.install()
    yield
    compat.uninstall()


def run_layer(args, cwd, **env):
    """``python -m arignote.compat.theano args...`` with no THEANO_FLAGS or .theanorc but ``env``'s."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("ARIGNOTE_", "THEANO"))}
    environ.update(ARIGNOTE_CACHE_DIR=config.cache_dir, THEANORC="", **env)
    return subprocess.run([sys.executable, "-m", "arignote.compat.theano", *map(str, args)], cwd=cwd,
                          env=environ, capture_output=True, text=True, timeout=300)


def flags(text, environ=None, **config_environ):
    """A fresh Config given THEANO_FLAGS=text (and ``environ``'s THEANORC)."""
    settings = Config(environ=config_environ)
    settings.read_theano_flags({"THEANORC": "", "THEANO_FLAGS": text, **(environ or {})})
    return settings


# ---------------------------------------------------------------------------------------------------
# The import hook


def test_import_theano_is_arignote(theano_layer):
    import theano
    import theano.tensor as TT

    assert theano is arignote and TT is T
    assert theano.config is config and theano.function is arignote.function


@pytest.mark.parametrize("name", SUBMODULES)
def test_every_submodule_is_arignotes_own(theano_layer, name):
    alias = importlib.import_module("theano." + name)
    assert alias is importlib.import_module("arignote." + name)
    assert sys.modules["theano." + name] is alias
    assert alias.__spec__.name == "arignote." + name  # the module keeps its own spec and name
    assert alias.__name__ == "arignote." + name


def test_from_imports_and_attributes(theano_layer):
    from theano import tensor, shared, function
    from theano.tensor.nnet import conv, sigmoid
    from theano.sandbox.rng_mrg import MRG_RandomStreams
    from theano.ifelse import ifelse
    from theano.compile import SharedVariable
    import theano.scalar

    assert (tensor, shared, function) == (T, arignote.shared, arignote.function)
    assert conv is arignote.tensor.nnet.conv and sigmoid is T.nnet.sigmoid and ifelse is arignote.ifelse.ifelse
    assert MRG_RandomStreams is arignote.sandbox.rng_mrg.MRG_RandomStreams
    assert SharedVariable is arignote.SharedVariable
    assert theano.scalar.upcast("int8", "float32") == "float32"


def test_a_module_arignote_gains_later_resolves_with_no_registration(theano_layer, monkeypatch):
    later = types.ModuleType("arignote.made_later")
    monkeypatch.setitem(sys.modules, "arignote.made_later", later)
    import theano.made_later

    assert theano.made_later is later


def test_a_missing_module_names_what_it_maps_to(theano_layer):
    with pytest.raises(ModuleNotFoundError, match=r"theano\.sandbox\.cuda.*arignote\.sandbox\.cuda") as error:
        import theano.sandbox.cuda  # noqa: F401
    assert error.value.name == "theano.sandbox.cuda"


def test_relative_imports_inside_arignote_stay_quiet(theano_layer):
    import theano.gradient  # noqa: F401

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        importlib.reload(arignote.gradient)  # its relative imports read its own __spec__ and __package__


def test_install_is_idempotent(theano_layer):
    compat.install()
    compat.install()
    assert sum(isinstance(f, compat.TheanoAliasFinder) for f in sys.meta_path) == 1
    assert compat.installed()


def test_uninstall_forgets_theano(theano_layer):
    import theano  # noqa: F401

    compat.uninstall()
    assert not compat.installed() and "theano" not in sys.modules
    with pytest.raises(ModuleNotFoundError):
        import theano  # noqa: F401,F811


def test_a_real_theano_already_imported_is_reported(monkeypatch):
    real = types.ModuleType("theano")
    real.__file__ = "/site-packages/theano/__init__.py"
    monkeypatch.setitem(sys.modules, "theano", real)
    with pytest.raises(RuntimeError, match=r"real Theano is already imported.*/site-packages/theano"):
        compat.install()
    assert not compat.installed()


def test_nothing_is_installed_under_the_name_theano():
    import importlib.util

    assert not compat.installed()
    assert importlib.util.find_spec("theano") is None


# ---------------------------------------------------------------------------------------------------
# python -m arignote.compat.theano


def test_python_m_runs_a_script_as_python_would(tmp_path):
    (tmp_path / "helper.py").write_text("VALUE = 42\n")
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent("""
        import json, pickle, sys
        import theano
        import theano.tensor as T
        import helper  # the script's folder comes first on sys.path

        class Model:  # pickled by reference to __main__, as in a script
            pass

        x = T.dscalar("x")
        f = theano.function([x], x * 2)
        print(json.dumps({"name": __name__, "argv": sys.argv, "file": __file__, "path0": sys.path[0],
                          "helper": helper.VALUE, "theano": theano.__name__, "f": float(f(3.0)),
                          "pickled": type(pickle.loads(pickle.dumps(Model()))).__name__}))
    """))
    done = run_layer([script, "a", "--b"], cwd=tmp_path.parent)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report == {"name": "__main__", "argv": [str(script), "a", "--b"], "file": str(script),
                      "path0": str(tmp_path), "helper": 42, "theano": "arignote", "f": 6.0, "pickled": "Model"}


def test_python_m_passes_the_exit_status_and_errors_on(tmp_path):
    (tmp_path / "exits.py").write_text("import theano\nraise SystemExit(3)\n")
    (tmp_path / "fails.py").write_text("import theano\nraise KeyError('boom')\n")
    assert run_layer([tmp_path / "exits.py"], cwd=tmp_path).returncode == 3
    failed = run_layer([tmp_path / "fails.py"], cwd=tmp_path)
    assert failed.returncode == 1 and "KeyError: 'boom'" in failed.stderr


def test_python_m_runs_a_module(tmp_path):
    (tmp_path / "prog_module.py").write_text(
        "import sys, theano\nprint(__name__, theano.__name__, sys.argv[1:])\n")
    done = run_layer(["-m", "prog_module", "x"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["__main__", "arignote", "['x']"]


def test_python_m_usage_and_missing_script(tmp_path):
    assert run_layer([], cwd=tmp_path).returncode == 2
    missing = run_layer([tmp_path / "nope.py"], cwd=tmp_path)
    assert missing.returncode == 2 and "nope.py" in missing.stderr


def test_python_m_reports_a_flag_arignote_cannot_follow(tmp_path):
    (tmp_path / "prog.py").write_text("import theano\nprint('ran')\n")
    done = run_layer([tmp_path / "prog.py"], cwd=tmp_path, THEANO_FLAGS="floatX=float32,device=cuda0")
    assert done.returncode == 2 and "ran" not in done.stdout
    assert "THEANO_FLAGS: device=cuda0: arignote runs on the CPU" in done.stderr
    assert "Traceback" not in done.stderr


def test_plain_arignote_never_reads_theano_settings(tmp_path):
    (tmp_path / "rc").write_text("[global]\nfloatX = float32\n")
    code = "import arignote; print(arignote.config.floatX, arignote.config.device, arignote.config.recorded)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={
        **{k: v for k, v in os.environ.items() if not k.startswith("ARIGNOTE_")},
        "THEANO_FLAGS": "floatX=float32,device=cuda,warn.round=False", "THEANORC": str(tmp_path / "rc")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["float64", "cpu", "{}"]


# ---------------------------------------------------------------------------------------------------
# THEANO_FLAGS and .theanorc


def test_theano_flags_of_a_typical_program():
    settings = flags("floatX=float32,device=cpu,mode=FAST_RUN,optimizer=None,exception_verbosity=high,"
                     "compute_test_value=raise,profile=True")
    assert (settings.floatX, settings.device, settings.mode) == ("float32", "cpu", "FAST_RUN")
    assert settings.optimizer == "None"
    assert (settings.exception_verbosity, settings.compute_test_value, settings.profile) == ("high", "raise", True)
    assert settings.rewrites == "none" and settings.backend is None and settings.recorded == {}


def test_defaults_are_theanos():
    settings = Config(environ={})
    assert (settings.device, settings.mode, settings.optimizer, settings.exception_verbosity) == \
        ("cpu", "FAST_RUN", "fast_run", "low")
    assert (settings.compute_test_value, settings.profile, settings.cast_policy) == ("off", False, "custom")
    assert Config(environ={"ARIGNOTE_REWRITES": "none"}).optimizer == "None"


@pytest.mark.parametrize("optimizer, rewrites", [
    ("None", "none"), ("fast_run", "all"), ("merge", "merge"), ("fast_compile", "merge,constant_folding,canonicalize"),
])
def test_optimizer_maps_onto_rewrites(optimizer, rewrites):
    settings = flags(f"optimizer={optimizer}")
    assert settings.rewrites == rewrites and settings.optimizer == optimizer
    settings.optimizer = None
    assert settings.rewrites == "none"


def test_optimizer_none_compiles_without_rewrites(monkeypatch, backend):
    monkeypatch.setattr(config, "rewrites", config.rewrites)  # restored last, after optimizer
    monkeypatch.setattr(config, "optimizer", "None")
    assert config.rewrites == "none"
    x = T.dvector("x")
    f = arignote.function([x], T.log(T.exp(x)).sum(), backend=backend)
    np.testing.assert_allclose(f(np.array([1.0, 2.0])), 3.0)
    assert {type(node.op).__name__ for node in f.maker.fgraph.apply_nodes} >= {"Log", "Exp"}


def test_mode_selects_a_backend_unless_one_is_given():
    assert flags("mode=FAST_COMPILE").backend == "reference"
    assert flags("mode=DebugMode").backend == "reference"
    assert flags("mode=FAST_RUN").backend is None
    assert flags("mode=numba").backend == "numba"
    assert flags("mode=FAST_COMPILE", ARIGNOTE_BACKEND="c").backend == "c"
    settings = flags("mode=FAST_COMPILE")
    settings.mode = "FAST_RUN"
    assert settings.backend is None


def test_the_rightmost_flag_wins_and_quotes_keep_commas():
    settings = flags("floatX=float32,warn.round=True,floatX=float64,"
                     "gcc.cxxflags='-O3 -march=native, -g',warn.round=False")
    assert settings.floatX == "float64"
    assert settings.recorded == {"gcc.cxxflags": "-O3 -march=native, -g", "warn.round": False}


def test_a_flag_without_value_is_ignored_with_a_warning():
    with pytest.warns(ConfigWarning, match="'floatX' has no value"):
        settings = flags("floatX,device=cpu")
    assert settings.floatX == "float64"


def test_a_misspelt_flag_is_recorded_with_a_warning():
    with pytest.warns(ConfigWarning, match="did you mean 'floatX'"):
        settings = flags("floatx=float32")
    assert settings.floatX == "float64" and settings.recorded == {"floatx": "float32"}


def test_theanorc_files_then_theano_flags(tmp_path):
    first, second = tmp_path / "a.rc", tmp_path / "b.rc"
    first.write_text("[global]\nfloatX = float32\ndevice = cpu\nmode = FAST_COMPILE\n[warn]\nround = False\n"
                     "[DebugMode]\ncheck_c = False\n[dnn.conv]\nalgo_fwd = small\n")
    second.write_text("[global]\nexception_verbosity = high\n[lib]\ncnmem = 0.5\n")
    settings = flags("mode=FAST_RUN,lib.cnmem=0.8", {"THEANORC": os.pathsep.join([str(first), str(second)])})
    assert (settings.floatX, settings.exception_verbosity, settings.mode) == ("float32", "high", "FAST_RUN")
    assert settings.warn.round is False and settings.DebugMode.check_c is False
    assert settings.dnn.conv.algo_fwd == "small" and settings.lib.cnmem == "0.8"


def test_a_broken_theanorc_is_named(tmp_path):
    broken = tmp_path / "broken.rc"
    broken.write_text("floatX = float32\n")  # no section
    with pytest.raises(ValueError, match="broken.rc"):
        flags("", {"THEANORC": str(broken)})


@pytest.mark.parametrize("text, message", [
    ("device=cuda0", "device=cuda0: arignote runs on the CPU only"),
    ("device=gpu1", "device=gpu1: arignote runs on the CPU only"),
    ("device=opencl0:0", "arignote runs on the CPU only"),
    ("device=tpu", "device must be cpu"),
    ("init_gpu_device=cuda", "init_gpu_device=cuda: arignote runs on the CPU only"),
    ("floatX=float16", "float16 changes the numerics"),
    ("floatX=float128", "floatX must be one of"),
    ("cast_policy=numpy+floatX", "cast_policy=numpy\\+floatX changes the dtypes of results"),
    ("mode=NanGuardMode", "mode must be one of Theano's modes FAST_RUN"),
    ("optimizer=o9", "optimizer must be one of"),
    ("compute_test_value=yes", "compute_test_value must be one of off, ignore, warn, raise, pdb"),
    ("exception_verbosity=medium", "exception_verbosity must be one of low, high"),
    ("profile=maybe", "profile must be True or False"),
    ("warn=1", "config.warn is a section of Theano flags"),
    ("floatX.x=1", "config.floatX is a setting, not a section"),
])
def test_flags_arignote_cannot_follow_are_errors(text, message):
    with pytest.raises(ValueError, match="THEANO_FLAGS: .*" + message):
        flags(text)


@pytest.mark.parametrize("value", ["off", "ignore", "warn", "raise", "pdb"])
def test_compute_test_value_takes_theanos_values(value):
    assert flags(f"compute_test_value={value}").compute_test_value == value


# ---------------------------------------------------------------------------------------------------
# Theano's names on arignote.config


def test_warn_flags_are_assignable_and_recorded():
    settings = Config(environ={})
    settings.warn.round = False
    settings.warn.sum_div_dimshuffle_bug = False
    assert settings.warn.round is False
    assert settings.recorded == {"warn.round": False, "warn.sum_div_dimshuffle_bug": False}
    assert "round=False" in repr(settings.warn)
    with pytest.raises(AttributeError, match="no setting 'warn.argmax_pushdown_bug'"):
        settings.warn.argmax_pushdown_bug
    with pytest.raises(AttributeError, match="section"):
        settings.warn = False


def test_unknown_flags_are_recorded_and_unset_ones_stay_missing():
    settings = Config(environ={})
    with pytest.raises(AttributeError, match="no setting 'allow_gc'"):
        settings.allow_gc
    assert hasattr(settings, "lib")  # a known section exists, even with nothing set in it
    assert not hasattr(settings, "never_set_anywhere")
    settings.allow_gc = False
    settings.lib.cnmem = 0.5
    assert settings.allow_gc is False and settings.lib.cnmem == 0.5
    assert settings.recorded == {"allow_gc": False, "lib.cnmem": 0.5}
    with pytest.raises(AttributeError):
        settings.recorded = {}


def test_exception_verbosity_high_ends_an_error_with_the_failing_nodes_graph(backend, monkeypatch):
    x, y = T.dvectors("x", "y")
    f = arignote.function([x, y], T.exp(x) + y, backend=backend)
    with pytest.raises(ValueError) as low:
        f(np.ones(3), np.ones(4))
    assert "Debugprint" not in str(low.value)
    monkeypatch.setattr(config, "exception_verbosity", "high")
    with pytest.raises(ValueError, match=r"(?s)\(3,\).*Debugprint of the failing node:\n.*x \[id .\] <TensorType\(float64, vector\)>"):
        f(np.ones(3), np.ones(4))


def test_on_unused_input_is_the_default_of_function(monkeypatch):
    x, y = T.dscalars("x", "y")
    with pytest.raises(Exception, match="on_unused_input"):
        arignote.function([x, y], x * 2)
    monkeypatch.setattr(config, "on_unused_input", "ignore")
    assert arignote.function([x, y], x * 2)(3.0, 4.0) == 6.0
    with pytest.raises(ValueError, match="on_unused_input"):
        config.on_unused_input = "skip"


def test_settings_are_checked_when_assigned(monkeypatch):
    monkeypatch.setattr(config, "exception_verbosity", "low")
    config.exception_verbosity = "high"
    with pytest.raises(ValueError, match="exception_verbosity"):
        config.exception_verbosity = "loud"
    monkeypatch.setattr(config, "profile", False)
    config.profile = "True"
    assert config.profile is True
    with pytest.raises(ValueError, match="arignote runs on the CPU"):
        config.device = "cuda"
    assert config.device == "cpu"
    with pytest.raises(AttributeError, match="method"):
        config.set_flag = 1


def test_printing_the_config_lists_settings_and_recorded_flags():
    settings = flags("floatX=float32,warn.round=False,lib.cnmem=0.8,exception_verbosity=high")
    text = str(settings)
    for name in ["backend", "floatX", "cache_dir", "check", "rewrites", "device", "mode", "optimizer",
                 "exception_verbosity", "compute_test_value", "profile"]:
        assert f"\n  {name} " in text, name
    assert "'float32'" in text and "ARIGNOTE_FLOATX" in text
    recorded = text.split("no use for them")[1]
    assert "warn.round = False" in recorded and "lib.cnmem = '0.8'" in recorded and "floatX" not in recorded
    assert "(none)" in str(Config(environ={}))
    assert "recorded={'warn.round': False" in repr(settings)


def test_the_global_config_has_no_invented_settings():
    with pytest.raises(AttributeError):
        config.no_such_setting_was_ever_set


# ---------------------------------------------------------------------------------------------------
# theano.scalar


@pytest.mark.parametrize("dtypes, float64_result, float32_result", [
    (("int8", "int16"), "int16", "int16"),
    (("int64", "float32"), "float64", "float32"),
    (("int32", "float64"), "float64", "float64"),
    (("float32",), "float32", "float32"),
    (("bool", "uint8"), "uint8", "uint8"),
])
def test_scalar_upcast_follows_theano(dtypes, float64_result, float32_result, floatX32):
    assert arignote.scalar.upcast(*dtypes) == float32_result
    config.floatX = "float64"
    assert arignote.scalar.upcast(*dtypes) == float64_result


# ---------------------------------------------------------------------------------------------------
# theano.tensor.extra_ops, on every backend


M = np.array([[0.5, -1.0, 2.0, 1.5], [1.25, 3.0, -0.5, 2.0], [0.75, 1.0, 1.5, -2.0]])
M3 = np.arange(24.0).reshape(2, 3, 4) / 7.0 - 1.0
V = np.array([0.5, 2.0, -1.0, 3.0, 0.25])
LABELS = np.array([0, 3, 3, 1, 5])
SQUARE3 = np.arange(8.0).reshape(2, 2, 2)


def numpy_offset_diagonal(a, val, offset):
    out = np.array(a)
    for row in range(out.shape[0]):
        if 0 <= row + offset < out.shape[1]:
            out[row, row + offset] = val
    return out


def numpy_fill_diagonal(a, val):
    out = np.array(a)
    np.fill_diagonal(out, val)
    return out


EXTRA_OPS = [
    case("cumsum flat", lambda x: extra_ops.cumsum(x), np.cumsum, M),
    case("cumsum axis 0", lambda x: extra_ops.cumsum(x, 0), lambda x: np.cumsum(x, 0), M),
    case("cumsum axis -1", lambda x: extra_ops.cumsum(x, -1), lambda x: np.cumsum(x, -1), M3),
    case("cumsum empty axis", lambda x: extra_ops.cumsum(x, 0), lambda x: np.cumsum(x, 0), np.zeros((0, 3)),
         grad=False),
    case("cumsum int8 keeps its dtype", lambda x: extra_ops.cumsum(x), lambda x: np.cumsum(x).astype("int8"),
         np.array([1, 2, 3], "int8")),
    case("cumprod axis 1", lambda x: extra_ops.cumprod(x, 1), lambda x: np.cumprod(x, 1), M3),
    case("cumprod flat", lambda x: extra_ops.cumprod(x), np.cumprod, V),
    case("diff", lambda x: extra_ops.diff(x), np.diff, M),
    case("diff n=2 axis 0", lambda x: extra_ops.diff(x, 2, 0), lambda x: np.diff(x, 2, 0), M),
    case("diff n=0", lambda x: extra_ops.diff(x, 0), lambda x: x, V),
    case("bincount", lambda x: extra_ops.bincount(x), lambda x: np.bincount(x), LABELS),
    case("bincount weights minlength", lambda x, w: extra_ops.bincount(x, w, minlength=9),
         lambda x, w: np.bincount(x, w, minlength=9), LABELS, V),
    case("repeat", lambda x: extra_ops.repeat(x, 2, axis=1), lambda x: np.repeat(x, 2, axis=1), M),
    case("squeeze", lambda x: extra_ops.squeeze(x.dimshuffle("x", 0, "x", 1)), lambda x: x, M),
    case("to_one_hot", lambda y: extra_ops.to_one_hot(y, 6), lambda y: np.eye(6)[y], LABELS),
    case("bartlett 7", lambda m: extra_ops.bartlett(m), lambda m: np.bartlett(m), np.array(7)),
    case("bartlett 1", lambda m: extra_ops.bartlett(m), lambda m: np.bartlett(m), np.array(1)),
    case("bartlett 0", lambda m: extra_ops.bartlett(m), lambda m: np.bartlett(m), np.array(0)),
    case("fill_diagonal wide", lambda a, v: extra_ops.fill_diagonal(a, v), numpy_fill_diagonal, M, np.array(9.0)),
    case("fill_diagonal tall", lambda a, v: extra_ops.fill_diagonal(a, v), numpy_fill_diagonal, M.T, np.array(9.0)),
    case("fill_diagonal 3-D", lambda a, v: extra_ops.fill_diagonal(a, v), numpy_fill_diagonal, SQUARE3, np.array(9.0)),
    *[case(f"fill_diagonal_offset {k}", lambda a, v, k=k: extra_ops.fill_diagonal_offset(a, v, k),
           lambda a, v, k=k: numpy_offset_diagonal(a, v, k), M, np.array(9.0)) for k in (-4, -1, 0, 2, 5)],
]


@pytest.mark.parametrize("build, expected, values, grad", EXTRA_OPS)
def test_extra_ops(build, expected, values, grad, backend):
    run_case(build, expected, values, grad, backend)


def test_extra_ops_refuse_bad_input():
    with pytest.raises(TypeError, match="bincount: x must be a vector of integers"):
        extra_ops.bincount(T.dvector())
    with pytest.raises(NotImplementedError, match="Assert"):
        extra_ops.bincount(T.lvector(), assert_nonneg=True)
    with pytest.raises(TypeError, match="would be cast down"):
        extra_ops.fill_diagonal(T.imatrix(), T.dscalar())
    with pytest.raises(TypeError, match="at least 2 dimensions"):
        extra_ops.fill_diagonal(T.dvector(), 1.0)
    with pytest.raises(ValueError, match="diff: n must be"):
        extra_ops.diff(T.dvector(), -1)


def test_fill_diagonal_beyond_2d_needs_equal_axes(backend):
    a, v = T.dtensor3("a"), T.dscalar("v")
    f = arignote.function([a, v], extra_ops.fill_diagonal(a, v), backend=backend)
    with pytest.raises(ValueError):
        f(np.zeros((2, 3, 2)), 1.0)


def test_theano_tensor_exports_extra_ops():
    assert T.cumsum is extra_ops.cumsum and T.bincount is extra_ops.bincount and T.extra_ops is extra_ops


# ---------------------------------------------------------------------------------------------------
# A classic Theano program, run unchanged through the layer

LOGISTIC_REGRESSION = '''
"""Theano's tutorial logistic regression, in floatX (the exercise of "Configuration Settings")."""
import json
import numpy
import theano
import theano.tensor as T

rng = numpy.random.RandomState(1234)
N, feats = 400, 40
inputs = rng.randn(N, feats)
D = (inputs.astype(theano.config.floatX), (inputs[:, :4].sum(axis=1) > 0).astype(theano.config.floatX))
training_steps = 150

x = T.matrix("x")
y = T.vector("y")
w = theano.shared((rng.randn(feats) * 0.01).astype(theano.config.floatX), name="w")
b = theano.shared(numpy.asarray(0., dtype=theano.config.floatX), name="b")
p_1 = 1 / (1 + T.exp(-T.dot(x, w) - b))
prediction = p_1 > 0.5
xent = -y * T.log(p_1) - (1 - y) * T.log(1 - p_1)
cost = T.cast(xent.mean(), theano.config.floatX) + 0.01 * (w ** 2).sum()
gw, gb = T.grad(cost, [w, b])
train = theano.function(inputs=[x, y], outputs=[prediction, xent],
                        updates=[[w, w - 0.1 * gw], [b, b - 0.1 * gb]], name="train")
predict = theano.function(inputs=[x], outputs=prediction, name="predict")

costs = [float(train(D[0], D[1])[1].mean()) for i in range(training_steps)]
print(json.dumps({"accuracy": float((predict(D[0]) == D[1]).mean()), "first": costs[0], "last": costs[-1],
                  "x": str(x.type), "is_matrix": x.type == T.matrix, "w": str(w.type),
                  "w_dtype": str(w.get_value().dtype), "rewrites": theano.config.rewrites}))
'''


@pytest.mark.parametrize("theano_flags, dtype, rewrites", [
    ("floatX=float32,device=cpu,mode=FAST_RUN,optimizer=fast_run,exception_verbosity=high,warn.round=False",
     "float32", "all"),
    ("optimizer=None", "float64", "none"),
])
def test_the_tutorials_logistic_regression_learns(tmp_path, backend, theano_flags, dtype, rewrites):
    program = tmp_path / "logistic_regression.py"
    program.write_text(LOGISTIC_REGRESSION)
    done = run_layer([program], cwd=tmp_path, ARIGNOTE_BACKEND=backend, THEANO_FLAGS=theano_flags)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["accuracy"] > 0.95 and report["last"] < report["first"] / 2, report
    assert report["x"] == f"TensorType({dtype}, matrix)" and report["is_matrix"]
    assert report["w"] == f"TensorType({dtype}, vector)" and report["w_dtype"] == dtype
    assert report["rewrites"] == rewrites
