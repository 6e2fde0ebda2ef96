"""Every setting arignote reads, in one place.

Settings come from environment variables when arignote is imported and can be changed afterwards by
assigning to the attribute (``arignote.config.floatX = "float32"``), as Theano programs do.

=====================  ===================  ====================================================
variable               attribute            meaning
=====================  ===================  ====================================================
ARIGNOTE_BACKEND       config.backend       backend for every function (default: fastest usable)
ARIGNOTE_FLOATX        config.floatX        default float dtype: float64 (default) or float32
ARIGNOTE_CACHE_DIR     config.cache_dir     where compiled code is kept
ARIGNOTE_CHECK         config.check         1: cross-check every call against the reference
ARIGNOTE_REWRITES      config.rewrites      "none" turns graph rewrites off; or a list of passes
ARIGNOTE_THREADS       thread_count()       most threads a compiled loop or convolution uses (default: cores, 8 at most)
ARIGNOTE_VECMATH       config.vecmath       0: numba loops call scalar libm, not libmvec's vector math
ARIGNOTE_KEEP_FREED    config.keep_freed    0: the numba backend leaves glibc's malloc thresholds alone
ARIGNOTE_BUCKET_BYTES  config.bucket_bytes  distributed training: gradients sent in buckets of this size
                                            while the backward pass runs; 0: one allreduce after it;
                                            auto (default): buckets only when the ranks span hosts
THEANO_FLAGS           Theano's names       read only by arignote.compat.theano.install()
THEANORC               Theano's names       .theanorc files (default ~/.theanorc), read by install() too
=====================  ===================  ====================================================

Theano programs also use Theano's own names (``config.device``, ``config.mode``, ``config.optimizer``,
``config.warn.round = False``, ...). The ones arignote acts on are validated here and mapped onto its
settings; the others are accepted, recorded, and listed when the config is printed (docs/theano-compat.md).
"""

import configparser
import functools
import os
import shlex
import warnings

FLOATX_CHOICES = ("float64", "float32")

# arignote's own settings: attribute, environment variable, meaning (printed by ``print(config)``)
ARIGNOTE_SETTINGS = (
    ("backend", "ARIGNOTE_BACKEND", "backend for every function (default: fastest usable)"),
    ("floatX", "ARIGNOTE_FLOATX", "default float dtype"),
    ("cache_dir", "ARIGNOTE_CACHE_DIR", "where compiled code is kept"),
    ("check", "ARIGNOTE_CHECK", "cross-check every call against the reference backend"),
    ("rewrites", "ARIGNOTE_REWRITES", "graph rewrites: all, none, or a list of passes"),
    ("vecmath", "ARIGNOTE_VECMATH", "numba loops call libmvec's vector math"),
    ("keep_freed", "ARIGNOTE_KEEP_FREED", "the numba backend raises glibc's malloc thresholds"),
    ("bucket_bytes", "ARIGNOTE_BUCKET_BYTES", "distributed gradients: bucket size in bytes, 0, or auto"),
)

# Theano's settings that arignote follows: attribute, meaning. Their values are checked on assignment.
THEANO_SETTINGS = (
    ("device", "cpu only: arignote's backends run on the CPU"),
    ("mode", "default mode of function(): FAST_RUN, FAST_COMPILE (reference backend), or a backend name"),
    ("optimizer", "fast_run: every rewrite; fast_compile, merge, None: fewer (sets rewrites)"),
    ("exception_verbosity", "low or high: how much a runtime error says about the graph node"),
    ("compute_test_value", "off, ignore, warn, raise or pdb: run the graph on test values as it is built"),
    ("profile", "time every compiled function and print the profiles at exit"),
    ("cast_policy", "custom: Theano's default casting rules (the only policy arignote has)"),
    ("on_unused_input", "raise, warn or ignore: what function() does with an input the outputs do not use"),
)
KNOWN_SETTINGS = frozenset([n for n, _, _ in ARIGNOTE_SETTINGS] + [n for n, _ in THEANO_SETTINGS])

# Theano's flag sections (``config.warn.round``, ``THEANO_FLAGS=gcc.cxxflags=...``): their flags are recorded.
THEANO_SECTIONS = frozenset((
    "warn", "gcc", "nvcc", "cuda", "gpu", "gpuarray", "gpuelemwise", "dnn", "dnn.conv", "magma", "ctc", "conv",
    "cmodule", "lib", "tensor", "traceback", "experimental", "numpy", "blas", "metaopt", "profiling", "optdb",
    "DebugMode", "NanGuardMode", "scan", "pycuda", "unittests", "compile", "op",
))

# Theano's optimizer names, mapped onto config.rewrites
OPTIMIZER_REWRITES = {
    "fast_run": "all", "o4": "all", "o3": "all", "o2": "all", "unsafe": "all",
    "fast_compile": "merge,constant_folding,canonicalize", "o1": "merge,constant_folding,canonicalize",
    "merge": "merge", "None": "none",
}
COMPUTE_TEST_VALUE_CHOICES = ("off", "ignore", "warn", "raise", "pdb")
EXCEPTION_VERBOSITY_CHOICES = ("low", "high")
ON_UNUSED_INPUT_CHOICES = ("raise", "warn", "ignore")
GPU_DEVICE_PREFIXES = ("cuda", "gpu", "opencl")
FAST_RUN_MODES = ("FAST_RUN", "Mode")  # Theano's modes that leave the backend to config.backend


class ConfigWarning(UserWarning):
    """A Theano flag that arignote cannot follow as written (a flag without a value, a misspelt name)."""


def thread_count(environ=os.environ):
    """The most threads a compiled loop or a convolution's blocks of images use: ARIGNOTE_THREADS when it
    is a positive integer, else the cores online; 8 at most. Read when used, as the C runtime's
    ``ari_cores`` reads it (the same rule), so that both backends agree."""
    try:
        count = int(environ.get("ARIGNOTE_THREADS", "0"))
    except ValueError:
        count = 0
    if count < 1:
        count = _cores_online()
    return max(1, min(count, 8))


@functools.cache
def _cores_online():
    """The cores online, counted once (asking the system took 6 us, and the glue asks at every node
    whose work threads share)."""
    return os.cpu_count() or 1


def _default_cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "arignote")


def _flag(value):
    return value.strip().lower() in ("1", "true", "yes", "on")


def _theano_bool(name, value):
    """Theano's BoolParam: True, False, or their spellings in a flag."""
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    spelled = str(value).strip().lower()
    if spelled in ("true", "1"):
        return True
    if spelled in ("false", "0"):
        return False
    raise ValueError(f"{name} must be True or False, got {value!r}")


def _one_of(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _check_floatX(value):
    if value not in FLOATX_CHOICES:
        why = ": float16 changes the numerics (half precision) and arignote does not support it" * (value == "float16")
        raise ValueError(f"floatX must be one of {FLOATX_CHOICES} (from ARIGNOTE_FLOATX, THEANO_FLAGS or "
                         f"config.floatX), got {value!r}{why}")
    return value


def _check_device(name, value):
    device = str(value).strip()
    if device == "" and name == "init_gpu_device":
        return device
    if device.lower().startswith(GPU_DEVICE_PREFIXES):
        raise ValueError(f"{name}={device}: arignote runs on the CPU only (its backends are reference, c and "
                         f"numba); remove {name}={device} (THEANO_FLAGS, .theanorc or config.{name}) or use device=cpu")
    if device != "cpu" or name != "device":
        raise ValueError(f"{name} must be cpu (arignote runs on the CPU), got {value!r}")
    return device


def _check_cast_policy(value):
    if value != "custom":
        raise ValueError(f"cast_policy={value} changes the dtypes of results and arignote does not support it: "
                         "it follows Theano's default casting rules (cast_policy=custom) only")
    return value


def _mode_backend(mode):
    """The backend a Theano mode selects (None: config.backend or the default one)."""
    if mode in FAST_RUN_MODES:
        return None
    from .function import THEANO_MODES  # core.function imports this module

    return THEANO_MODES.get(mode, mode)


def _check_mode(value):
    from .function import THEANO_MODES
    from .plugins import registry

    if value is None:
        value = "FAST_RUN"
    known = FAST_RUN_MODES + tuple(m for m in THEANO_MODES if m not in FAST_RUN_MODES)
    if not isinstance(value, str) or value not in known and value not in registry.names():
        raise ValueError(f"mode must be one of Theano's modes {', '.join(known)} or a backend name "
                         f"({', '.join(registry.names())}), got {value!r}")
    return value


def _parse_flags(text):
    """THEANO_FLAGS as Theano splits it: comma-separated key=value pairs, quotes allowed, the last wins."""
    splitter = shlex.shlex(text, posix=True)
    splitter.whitespace = ","
    splitter.whitespace_split = True
    pairs = {}
    for item in splitter:
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            warnings.warn(f"THEANO_FLAGS: flag {item!r} has no value; it is ignored", ConfigWarning, stacklevel=3)
            continue
        key, value = item.split("=", 1)
        pairs.pop(key.strip(), None)  # keep the order of the last assignment
        pairs[key.strip()] = value.strip()
    return pairs


def _theanorc_files(environ):
    home = os.path.expanduser("~")
    default = os.pathsep.join([os.path.join(home, ".theanorc"), os.path.join(home, ".theanorc.txt")])
    return [os.path.expanduser(p) for p in environ.get("THEANORC", default).split(os.pathsep) if p]


def _read_theanorc(path):
    """{flag: value} from one .theanorc: [global] holds plain flags, [section] holds section.flag."""
    parser = configparser.ConfigParser(defaults={"USER": os.environ.get("USER", "")})
    flags = {}
    try:
        parser.read(path)
        for section in parser.sections():
            for option in parser.options(section):
                if option not in parser.defaults():
                    flags[option if section == "global" else f"{section}.{option}"] = parser.get(section, option)
    except configparser.Error as error:
        raise ValueError(f"{path}: not a readable Theano configuration file: {error}") from None
    return flags


def _check_bucket_bytes(value):
    """'auto', or a size in bytes (an int, or text such as "4194304"; 0: no buckets)."""
    text = str(value).strip().lower()
    if text == "auto":
        return "auto"
    try:
        size = int(text)
    except ValueError:
        size = -1
    if size < 0:
        raise ValueError(f"bucket_bytes (ARIGNOTE_BUCKET_BYTES) must be 'auto' or a number of bytes >= 0, "
                         f"got {value!r}")
    return size


# Settings whose values are checked (and converted) on assignment
SETTING_CHECKS = {
    "bucket_bytes": _check_bucket_bytes,
    "floatX": _check_floatX,
    "device": lambda value: _check_device("device", value),
    "exception_verbosity": lambda value: _one_of("exception_verbosity", value, EXCEPTION_VERBOSITY_CHOICES),
    "compute_test_value": lambda value: _one_of("compute_test_value", value, COMPUTE_TEST_VALUE_CHOICES),
    "profile": lambda value: _theano_bool("profile", value),
    "cast_policy": _check_cast_policy,
    "on_unused_input": lambda value: _one_of("on_unused_input", value, ON_UNUSED_INPUT_CHOICES),
}
# Theano flags that are recorded once checked: arignote can follow them only at their default
FLAG_CHECKS = {
    "init_gpu_device": lambda value: _check_device("init_gpu_device", value),
}


class ConfigSection:
    """A section of Theano flags (``config.warn``): its flags are recorded by the config."""

    def __init__(self, config, prefix):
        object.__setattr__(self, "_config", config)
        object.__setattr__(self, "_prefix", prefix)

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._config._lookup(f"{self._prefix}.{name}")

    def __setattr__(self, name, value):
        self._config.set_flag(f"{self._prefix}.{name}", value)

    def _items(self):
        start = self._prefix + "."
        return {k[len(start):]: v for k, v in self._config.recorded.items() if k.startswith(start)}

    def __dir__(self):
        return sorted({k.split(".")[0] for k in self._items()})

    def __repr__(self):
        items = ", ".join(f"{k}={v!r}" for k, v in self._items().items())
        return f"<config section {self._prefix}: {items or 'nothing recorded'}>"


class Config:
    """The live settings object (``arignote.config``)."""

    def __init__(self, environ=os.environ):
        object.__setattr__(self, "_recorded", {})  # Theano flags arignote accepts but has no use for
        self.backend = environ.get("ARIGNOTE_BACKEND", "").strip() or None
        self.floatX = environ.get("ARIGNOTE_FLOATX", "float64").strip() or "float64"
        self.cache_dir = environ.get("ARIGNOTE_CACHE_DIR", "").strip() or _default_cache_dir()
        self.check = _flag(environ.get("ARIGNOTE_CHECK", "0"))
        self.rewrites = environ.get("ARIGNOTE_REWRITES", "all").strip() or "all"
        self.vecmath = environ.get("ARIGNOTE_VECMATH", "1").strip() != "0"
        self.keep_freed = environ.get("ARIGNOTE_KEEP_FREED", "1").strip() != "0"
        self.bucket_bytes = environ.get("ARIGNOTE_BUCKET_BYTES", "auto")
        # Theano's names (THEANO_FLAGS is read only by arignote.compat.theano.install())
        self.device = "cpu"
        self._mode = "FAST_RUN"
        self._optimizer = "None" if self.rewrites.lower() == "none" else "fast_run"
        self.exception_verbosity = "low"
        self.compute_test_value = "off"
        self.profile = False
        self.cast_policy = "custom"
        self.on_unused_input = "raise"

    # -- settings with a meaning beyond their value -------------------------------------------------

    @property
    def backend(self):
        """The backend every function uses: ARIGNOTE_BACKEND / config.backend, else the one config.mode names."""
        return self._backend or _mode_backend(self._mode)

    @backend.setter
    def backend(self, name):
        self._backend = name

    @property
    def mode(self):
        return self._mode

    @mode.setter
    def mode(self, value):
        self._mode = _check_mode(value)

    @property
    def optimizer(self):
        return self._optimizer

    @optimizer.setter
    def optimizer(self, value):
        name = "None" if value is None else str(value)
        if name not in OPTIMIZER_REWRITES:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZER_REWRITES)}, got {value!r}")
        self._optimizer = name
        self.rewrites = OPTIMIZER_REWRITES[name]

    @property
    def recorded(self):
        """{flag: value} of the Theano flags that were set and that arignote has no use for."""
        return dict(self._recorded)

    # -- assignment: settings are checked, other flags recorded -----------------------------------

    def __setattr__(self, name, value):
        if name.startswith("_") or isinstance(getattr(type(self), name, None), property):
            object.__setattr__(self, name, value)
        elif name in SETTING_CHECKS:
            object.__setattr__(self, name, SETTING_CHECKS[name](value))
        elif name in KNOWN_SETTINGS:
            object.__setattr__(self, name, value)
        elif hasattr(type(self), name):
            raise AttributeError(f"config.{name} is a method, not a setting")
        else:
            self.set_flag(name, value)

    def set_flag(self, name, value):
        """Set a setting or Theano flag by its (dotted) name: one that arignote has no use for is recorded."""
        if name in KNOWN_SETTINGS:
            setattr(self, name, value)
            return
        head = name.split(".")[0]
        if head in KNOWN_SETTINGS:
            raise AttributeError(f"config.{head} is a setting, not a section of flags: cannot set {name}")
        if name in THEANO_SECTIONS:
            raise AttributeError(f"config.{name} is a section of Theano flags: set its flags "
                                 f"(config.{name}.flag = value), not the section")
        if name in FLAG_CHECKS:
            value = FLAG_CHECKS[name](value)
        near = [k for k in KNOWN_SETTINGS | THEANO_SECTIONS if k.lower() == head.lower() and k != head]
        if near:
            warnings.warn(f"config: {name!r} is not a setting of arignote or Theano; did you mean {near[0]!r}? "
                          "It is recorded and has no effect", ConfigWarning, stacklevel=3)
        self._recorded[name] = value

    def _lookup(self, name):
        if name in self._recorded:
            return self._recorded[name]
        if name in THEANO_SECTIONS or any(k.startswith(name + ".") for k in self._recorded):
            return ConfigSection(self, name)
        raise AttributeError(f"arignote.config has no setting {name!r}: arignote does not use it and no "
                             "program set it (Theano flags arignote has no use for are recorded when set)")

    def __getattr__(self, name):  # only called for names that are not ordinary attributes
        if name.startswith("_"):
            raise AttributeError(name)
        return self._lookup(name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | KNOWN_SETTINGS | {k.split(".")[0] for k in self._recorded})

    # -- THEANO_FLAGS and .theanorc ---------------------------------------------------------------

    def read_theano_flags(self, environ=os.environ):
        """Apply the .theanorc files (THEANORC, default ~/.theanorc) and then THEANO_FLAGS, as Theano reads them.

        Called by ``arignote.compat.theano.install()``: plain arignote never reads Theano's settings.
        Raises ValueError naming the flag and where it came from when arignote cannot follow it.
        """
        flags = {}
        for path in _theanorc_files(environ):
            if os.path.isfile(path):
                flags.update({_canonical(k): (v, path) for k, v in _read_theanorc(path).items()})
        for key, value in _parse_flags(environ.get("THEANO_FLAGS", "")).items():
            flags.pop(key, None)
            flags[key] = (value, "THEANO_FLAGS")
        for key, (value, source) in flags.items():
            try:
                self.set_flag(key, _from_text(key, value))
            except (ValueError, AttributeError) as error:
                raise ValueError(f"{source}: {error}") from None

    # -- printing -----------------------------------------------------------------------------------

    def __str__(self):
        def rows(items):
            return [f"  {name:<20} = {value!r:<24} {meaning}" for name, value, meaning in items]

        lines = ["arignote.config"]
        lines += rows((n, getattr(self, n), f"{env}: {meaning}") for n, env, meaning in ARIGNOTE_SETTINGS)
        lines.append("Theano's settings that arignote follows (THEANO_FLAGS is read by arignote.compat.theano)")
        lines += rows((n, getattr(self, n), meaning) for n, meaning in THEANO_SETTINGS)
        lines.append("Theano flags recorded: accepted, but arignote has no use for them")
        lines += [f"  {name} = {value!r}" for name, value in self._recorded.items()] or ["  (none)"]
        return "\n".join(lines)

    def __repr__(self):
        names = [n for n, _, _ in ARIGNOTE_SETTINGS] + [n for n, _ in THEANO_SETTINGS]
        settings = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"Config({settings}, recorded={self._recorded!r})"


def _canonical(name):
    """configparser lowercases names: Theano's spelling back (floatx -> floatX, debugmode.x -> DebugMode.x)."""
    spellings = {k.lower(): k for k in KNOWN_SETTINGS | THEANO_SECTIONS}
    parts = name.split(".")
    for n in range(len(parts), 0, -1):  # the longest known prefix (dnn.conv before dnn)
        head = ".".join(parts[:n]).lower()
        if head in spellings:
            return ".".join([spellings[head]] + parts[n:])
    return name


def _from_text(name, value):
    """A flag's text as a value: settings convert their own; a recorded flag's True/False becomes a bool."""
    if name not in KNOWN_SETTINGS and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


config = Config()
