"""Writing files safely, and where anynet keeps its own.

:func:`write_atomically` writes through a temporary ``.<name>.<pid>@<host>.XXXXXXXX.tmp`` in the
same folder, flushed to disk, then ``os.replace``: a crash never leaves half a file behind. Only a
regular file (or nothing) at the path is replaced: a folder, FIFO, device, socket or symbolic link
there is refused with a :class:`WriteTargetError`. Write errors name the file and keep their
``errno``. Each write first removes the temporaries earlier writes of the same file left behind
when they were killed (their process is gone). Models, checkpoints, sweep tables and the
last-model record are all written this way. :func:`anynet_home` is where models and records go.
"""

from __future__ import annotations

import os
import re
import socket
import stat
import tempfile
import time
from pathlib import Path

__all__ = [
    "STALE_TMP_SECONDS",
    "WriteTargetError",
    "anynet_home",
    "check_writable_folder",
    "check_write_target",
    "temporaries",
    "temporary_of",
    "write_atomically",
]

#: temporaries of interrupted saves whose writer cannot be checked (another host, or an old
#: name without the writer's process id) are removed by the next save once this old
STALE_TMP_SECONDS = 60.0

# a write's temporary: ``.<target>.<pid>@<host>.<8 random characters of mkstemp>.tmp``, or
# ``.<target>.<8 random>.tmp`` as anynet 0.1.0 named them, before the process id was added
_TMP = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp")

_TMP_PID = re.compile(
    r"\.(?P<target>.+)\.(?P<pid>[1-9][0-9]{0,9})@(?P<host>[A-Za-z0-9._-]{1,64})\.[a-z0-9_]{8}\.tmp"
)


class WriteTargetError(OSError):
    """The path to write holds something anynet will not replace: not a regular file."""


def anynet_home() -> Path:
    """``$ANYNET_HOME``, or ``~/.anynet``: where trained models and the last-model record go."""
    return Path(os.environ.get("ANYNET_HOME") or Path.home() / ".anynet").expanduser()


def check_writable_folder(folder: Path, what: str) -> None:
    """Raise an ``OSError`` that says what is wrong unless ``what`` files (``"model"``,
    ``"checkpoint"``) can be written into ``folder`` the way :func:`write_atomically` writes
    them. The folder and its missing parents are created for the check and removed again, so a
    check that runs before a long job leaves nothing behind."""
    folder = Path(folder).expanduser()
    created = _missing_folders(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f"{folder} is not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot create the {what} folder {folder} ({exc.strerror or exc})") from None
        try:
            fd, probe = tempfile.mkstemp(prefix=".anynet-write-check-", dir=folder)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise OSError(f"cannot write a {what} into {folder} ({exc.strerror or exc})") from None
    finally:
        for path in created:  # deepest first
            if path.is_dir():
                path.rmdir()


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary in the same folder, flushed to disk and
    renamed over the old file: a crash leaves the old file or the new one, never half of one.

    Only a regular file (or nothing) at ``path`` is replaced; anything else there is refused
    with a :class:`WriteTargetError`, checked before the temporary is written and again right
    before the rename. Other failures raise an ``OSError`` that names ``path`` and keeps the
    ``errno`` (e.g. ``errno.ENOSPC`` for a full disk); the old file stays as it was. Before
    writing, temporaries of earlier writes of ``path`` whose process is gone are removed.
    """
    path = Path(path)
    try:
        check_write_target(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in _stale_temporaries(path):
            stale.unlink(missing_ok=True)
        _write_and_rename(path, data)
    except WriteTargetError:
        raise
    except OSError as exc:
        raise _naming(exc, path) from exc


def _write_and_rename(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would make the model private
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        check_write_target(path)  # again: something else may have been put there meanwhile
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` as an ``OSError`` (of the same subclass and ``errno``) that names ``path``."""
    if exc.errno is None:
        return OSError(f"cannot write {path}: {exc}")
    return OSError(exc.errno, f"cannot write {path}: {exc.strerror or exc}")


def check_write_target(path) -> None:
    """Raise :class:`WriteTargetError` unless ``path`` is a regular file or absent (a symbolic
    link is refused, whatever it points to: :func:`write_atomically` would replace the link)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISREG(st.st_mode):
        return
    raise WriteTargetError(
        f"{path} is {_file_kind(path, st.st_mode)}, not a regular file; anynet replaces only regular files"
    )


def _file_kind(path, mode: int) -> str:
    if stat.S_ISLNK(mode):
        try:
            return f"a symbolic link (to {os.readlink(path)})"
        except OSError:
            return "a symbolic link"
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "a special file")


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _host() -> str:
    """This machine's name as it goes into temporaries' names."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname())[:64] or "localhost"


def _temporary_prefix(path: Path) -> str:
    """``.<name>.<pid>@<host>.`` (just ``.<name>.`` for a name too long to take more)."""
    prefix = f".{path.name}.{os.getpid()}@{_host()}."
    return prefix if len(os.fsencode(prefix)) + 12 <= 255 else f".{path.name}."


def temporary_of(name: str) -> tuple[str, int | None, str | None] | None:
    """The target, writer's process id and host of a temporary's file name (``None`` for
    the two of an old-style name), or ``None`` when ``name`` is no temporary of ours."""
    match = _TMP_PID.fullmatch(name)
    if match:
        return match["target"], int(match["pid"]), match["host"]
    match = _TMP.fullmatch(name)
    return (match["target"], None, None) if match else None


def temporaries(path: Path) -> list[tuple[Path, int | None, str | None]]:
    """The temporaries written for ``path`` (by this or another process), with their
    writer's process id and host where the name has them."""
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    found = []
    for name in sorted(names):
        parsed = temporary_of(name)
        if parsed and parsed[0] == path.name:
            found.append((path.parent / name, parsed[1], parsed[2]))
    return found


def _stale_temporaries(path: Path) -> list[Path]:
    """The temporaries of ``path`` left by writes that will never finish: their process is
    gone; where that cannot be checked (another host, an old-style name), older than
    :data:`STALE_TMP_SECONDS`."""
    stale, now = [], time.time()
    for tmp, pid, host in temporaries(path):
        alive = _process_alive(pid) if pid is not None and host == _host() else None
        if alive is None:
            try:
                alive = now - tmp.lstat().st_mtime < STALE_TMP_SECONDS
            except OSError:
                continue
        if not alive:
            stale.append(tmp)
    return stale


def _process_alive(pid: int) -> bool | None:
    """Whether process ``pid`` exists on this machine (``None``: cannot tell)."""
    if os.name == "nt":  # os.kill would terminate it there
        return None
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user's process
        return True
    except (OSError, OverflowError):
        return None
    return True
