"""The on-disk cache of compiled code, as both compiled backends keep it: the checks and file formats
decided once (docs/cache.md gives the threat model).

- **Folders only this user can write.** The cache root (``config.cache_dir``) and every folder arignote
  makes under it are checked with ``os.lstat`` before use: a real folder (no symbolic link), owned by
  this user, writable by nobody else; folders are created with mode 0o700. The root may be a symbolic
  link the user made; above it, no folder may be writable by others without the sticky bit (``/tmp``
  has it). A folder that fails is refused: the process keeps its compiled code in a private temporary
  folder instead and says so once (``CacheWarning``, naming the folder and the fix). So does a folder
  that cannot be written (read-only, full disk).
- **Files read through one door.** ``read_private`` opens with ``O_NOFOLLOW`` and checks the *opened*
  file (``fstat``: a regular file of this user that nobody else can write), so what is checked is what
  is read.
- **Entries covered by a manifest written last.** An entry is a folder of files plus ``manifest.json``
  (the SHA-256 of each file), built in a private staging folder and published by one atomic rename;
  ``read_entry`` returns the bytes of its files only when every digest agrees. A damaged entry is moved
  aside and rebuilt; two processes publishing the same entry both succeed (the first rename wins, the
  second process uses it). Single files that change over time (numba's index and object files) are
  covered by a ``Manifest`` of their own, updated under ``locked`` after each write.
"""

import atexit
import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import tempfile
import threading
import uuid
import warnings

from arignote.core.config import config

MANIFEST = "manifest.json"


class CacheWarning(UserWarning):
    """The cache folder is refused (not this user's, or writable by others) or cannot be written:
    compiled code is kept in a private temporary folder for this process instead."""


class UntrustedFile(OSError):
    """A cache file or folder that this user does not own, that others can write, or a symbolic link."""


def _uid():
    """This user's id (None where there are no POSIX owners: Windows, where only digests are checked)."""
    return os.geteuid() if hasattr(os, "geteuid") else None


NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def digest(data):
    return hashlib.sha256(data).hexdigest()


def _why_untrusted(st, folder):
    """Why a file or folder with this (l)stat may not be trusted, or None."""
    kind = "folder" if folder else "file"
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link"
    if not (stat.S_ISDIR(st.st_mode) if folder else stat.S_ISREG(st.st_mode)):
        return f"it is not a {kind}"
    if _uid() is None:
        return None
    if st.st_uid != _uid():
        return f"it belongs to user id {st.st_uid}, not to this user ({_uid()})"
    if st.st_mode & 0o022:
        return f"other users can write it (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def check_folder(path):
    """Raise UntrustedFile unless ``path`` is a folder of this user that nobody else can write."""
    why = _why_untrusted(os.lstat(path), folder=True)
    if why:
        raise UntrustedFile(errno.EPERM, why, path)


def make_folder(path):
    """``path`` as a checked private folder, created with mode 0o700 if it is missing."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    check_folder(path)
    return path


def _check_root(root):
    """Make the cache root (mode 0o700 for every folder made) and check it and the folders above it."""
    os.makedirs(root, mode=0o700, exist_ok=True)
    link = os.lstat(root)
    if stat.S_ISLNK(link.st_mode) and link.st_uid != _uid():  # the user's own link is theirs to make
        raise UntrustedFile(errno.EPERM, f"it is a symbolic link of user id {link.st_uid}", root)
    why = _why_untrusted(os.stat(root), folder=True)
    if why:
        raise UntrustedFile(errno.EPERM, why, root)
    above = os.path.dirname(os.path.realpath(root))
    while _uid() is not None:
        st = os.stat(above)
        if st.st_mode & 0o002 and not st.st_mode & stat.S_ISVTX:  # others could rename the root away
            raise UntrustedFile(errno.EPERM, f"everyone can write the folder above it, {above}, which has no "
                                             "sticky bit", root)
        parent = os.path.dirname(above)
        if parent == above:
            return
        above = parent


# ---------------------------------------------------------------------------------------------------
# where: the checked cache folder, else this process's private temporary folder


_private = []
_warned = set()
_state_lock = threading.Lock()


def private_folder(kind):
    """``kind``'s folder in this process's private temporary folder, removed at exit (loaded libraries
    stay mapped). mkdtemp makes it new, of mode 0o700, under a name nobody could have guessed: only
    this process puts anything there."""
    with _state_lock:
        if not _private:
            _private.append(tempfile.mkdtemp(prefix="arignote-cache-"))
            atexit.register(shutil.rmtree, _private[0], True)
    path = os.path.join(_private[0], kind)
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def is_private(path):
    return bool(_private) and os.path.commonpath([_private[0], os.path.abspath(path)]) == _private[0]


PRIVATE = "This process keeps its compiled code in a private temporary folder instead, compiled again in every process"


def warn(folder, error, instead=PRIVATE):
    """Say once per folder and reason why the cache folder is not used, what happens instead, and the fix."""
    if isinstance(error, UntrustedFile):
        what = (f"arignote does not use its cache folder {folder}: {error.strerror}. Compiled code there could "
                "have been planted by someone else")
        fix = (f"make the folder yours and private (chown $USER {folder}; chmod 700 {folder}), or remove it, "
               "or set ARIGNOTE_CACHE_DIR to a folder only you can write")
    else:
        what = f"arignote cannot write its cache folder {folder}: {error.strerror or error}"
        fix = "free some disk space or make the folder writable, or set ARIGNOTE_CACHE_DIR to a writable folder"
    key = (folder, what)
    with _state_lock:
        if key in _warned:
            return
        _warned.add(key)
    warnings.warn(f"{what}. {instead}. To fix: {fix}.", CacheWarning, stacklevel=3)


def folder(kind):
    """The checked folder ``<config.cache_dir>/<kind>``; where it is refused or cannot be made, the
    private temporary one (warned once)."""
    root = config.cache_dir
    path = os.path.join(root, kind)
    try:
        _check_root(root)
        return make_folder(path)
    except OSError as error:
        warn(error.filename or path, error)
        return private_folder(kind)


# ---------------------------------------------------------------------------------------------------
# files


def read_private(path):
    """The bytes of ``path``, opened without following a symbolic link and checked as opened
    (``fstat``): UntrustedFile unless it is a regular file of this user that nobody else can write."""
    fd = os.open(path, os.O_RDONLY | NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with os.fdopen(fd, "rb") as file:
        why = _why_untrusted(os.fstat(fd), folder=False)
        if why:
            raise UntrustedFile(errno.EPERM, why, path)
        return file.read()


def open_new(path):
    """A new file of mode 0o600 at ``path`` (never an existing file or a link), open for binary writing."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | getattr(os, "O_BINARY", 0)
    return os.fdopen(os.open(path, flags, 0o600), "wb")


def write_private(path, data):
    """Write ``data`` to ``path`` atomically: a new private file under a unique name, then renamed."""
    temporary = f"{path}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        with open_new(temporary) as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def remove(path):
    with contextlib.suppress(OSError):
        os.unlink(path)


class Manifest:
    """A JSON file of {name: SHA-256}, read through ``read_private`` and replaced atomically."""

    def __init__(self, path):
        self.path = path

    def read(self):
        """The digests, or {} when the manifest is missing, untrusted or unreadable."""
        try:
            files = json.loads(read_private(self.path))["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return {}
        return files if isinstance(files, dict) else {}

    def write(self, files):
        write_private(self.path, json.dumps({"files": files}, indent=1, sort_keys=True).encode())

    def update(self, **digests):
        """Add or change some digests (call under ``locked(..., exclusive=True)``)."""
        files = self.read()
        files.update(digests)
        self.write(files)


_held = threading.local()


def _open_lock(folder, exclusive):
    """The lock file's descriptor, or None where there is none to take (a read-only cache: each file
    read is still checked against its digest)."""
    path = os.path.join(folder, ".lock")
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o600)
    except OSError:
        if exclusive:  # the writes that follow would fail too
            raise
    try:
        return os.open(path, os.O_RDONLY | NOFOLLOW)
    except OSError:
        return None


@contextlib.contextmanager
def locked(folder, exclusive):
    """An advisory lock (flock) on ``folder``'s ``.lock`` file, between processes and threads; a
    thread that holds it already goes on (take it exclusive first where you may write)."""
    held = vars(_held).setdefault("folders", set())
    try:
        import fcntl
    except ImportError:  # no flock here: the atomic renames still keep every file whole
        fcntl = None
    fd = None if folder in held or fcntl is None else _open_lock(folder, exclusive)
    if fd is None:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        held.add(folder)
        try:
            yield
        finally:
            held.discard(folder)
    finally:
        os.close(fd)  # closing releases the lock


# ---------------------------------------------------------------------------------------------------
# entries: a folder of files and its manifest, published by one rename


def read_entry(root, name):
    """{file name: bytes} of the entry ``root/name`` if it is a private folder whose manifest's every
    digest agrees with its file; else None (missing, damaged, planted: rebuild it)."""
    entry = os.path.join(root, name)
    try:
        check_folder(entry)
        files = json.loads(read_private(os.path.join(entry, MANIFEST)))["files"]
        contents = {}
        for file_name, expected in files.items():
            if os.path.basename(file_name) != file_name or file_name in (MANIFEST, ".", ".."):
                return None
            data = read_private(os.path.join(entry, file_name))
            if digest(data) != expected:
                return None
            contents[file_name] = data
        return contents
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def stage(root):
    """A new private folder in ``root`` to build an entry in, then ``publish`` it."""
    return tempfile.mkdtemp(prefix=".staging-", dir=root)


def publish(root, name, staging):
    """Write the manifest of the files in ``staging`` last, then rename the folder to ``root/name``
    (moving a damaged entry aside first). Returns the published entry's {file name: bytes}: ours, or
    the one another process published first."""
    contents = {}
    for file_name in sorted(os.listdir(staging)):
        contents[file_name] = read_private(os.path.join(staging, file_name))
    Manifest(os.path.join(staging, MANIFEST)).write({n: digest(d) for n, d in contents.items()})
    entry = os.path.join(root, name)
    for _ in range(3):
        try:
            os.rename(staging, entry)
            return contents
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY, errno.EISDIR, errno.ENOTDIR):
                raise
        existing = read_entry(root, name)
        if existing is not None:  # another process published it first: use theirs
            discard(staging)
            return existing
        discard(entry)  # damaged or planted
    raise OSError(errno.EEXIST, "the cache entry kept changing while it was published", entry)


def store(root, name, contents):
    """Publish an entry of the given {file name: bytes} (``publish``): its contents as published."""
    staging = stage(root)
    try:
        for file_name, data in contents.items():
            with open_new(os.path.join(staging, file_name)) as file:
                file.write(data)
        return publish(root, name, staging)
    finally:
        if os.path.isdir(staging):
            shutil.rmtree(staging, ignore_errors=True)


def discard(path):
    """Remove a folder or file: first renamed aside (one atomic step), then deleted."""
    aside = os.path.join(os.path.dirname(path), f".trash-{uuid.uuid4().hex[:12]}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    if os.path.isdir(aside) and not os.path.islink(aside):
        shutil.rmtree(aside, ignore_errors=True)
    else:
        remove(aside)
