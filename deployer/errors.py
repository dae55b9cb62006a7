"""Errors a user can act on, each with the exit code the CLI returns for it.

Exit codes: 0 success, 1 an operation failed, 2 bad input (configuration, arguments,
model file), 3 a required tool or service is missing (Docker, a provider package).

Also reading a user's configuration file safely (``read_config_text``): what it is is
checked with ``stat`` before it is opened (a FIFO is never opened, so nothing blocks), its
size before it is read (``DEFAULT_MAX_CONFIG_MB``, raised with the environment variable
``DEPLOYER_MAX_CONFIG_MB``), its encoding after (UTF-8). Standard library only: the router
image ships this module.
"""

from __future__ import annotations

import codecs
import os
import stat
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_MISSING_DEPENDENCY = 3


class DeployerError(Exception):
    """Base class: a message for a human, and an exit code for scripts."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(DeployerError):
    """deployer.yaml (or another input file) is invalid. ``problems`` lists one line each."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, source: str, problems: list[str], *, hint: str | None = None) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"{source}: {len(problems)} {noun}\n{lines}", hint=hint)


class UsageError(DeployerError):
    """A command was called with arguments that cannot work."""

    exit_code = EXIT_BAD_INPUT


class MissingDependencyError(DeployerError):
    """An optional package, tool or service is not available."""

    exit_code = EXIT_MISSING_DEPENDENCY


# -- reading configuration files ---------------------------------------------------------

DEFAULT_MAX_CONFIG_MB = 1.0
MAX_CONFIG_ENV = "DEPLOYER_MAX_CONFIG_MB"
_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32 byte order mark"),
    (codecs.BOM_UTF32_BE, "UTF-32 byte order mark"),
    (codecs.BOM_UTF16_LE, "UTF-16 byte order mark"),
    (codecs.BOM_UTF16_BE, "UTF-16 byte order mark"),
)


def env_limit(name: str, default: float) -> float:
    """A positive number from the environment variable ``name``, or ``default`` when unset."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise UsageError(f"{name}: expected a positive number, got {raw!r}")
    return value


def kind_of(mode: int) -> str:
    """What a ``stat`` mode is, in words ("a directory", "a FIFO (named pipe)", ...)."""
    kinds = (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    )
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def stat_of(file: Path, create_hint: str | None = None) -> os.stat_result:
    """``stat`` of ``file`` (following symlinks), or a ConfigError saying why not."""
    try:
        return file.stat()
    except FileNotFoundError:
        raise ConfigError(str(file), ["file not found"], hint=create_hint) from None
    except OSError as exc:
        raise ConfigError(str(file), [f"cannot read: {exc.strerror or exc}"]) from None


def require_regular(file: Path, create_hint: str | None = None) -> os.stat_result:
    """``stat`` of ``file`` if it is a regular file; else a ConfigError naming what it is."""
    info = stat_of(file, create_hint)
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(str(file), [f"expected a regular file, got {kind_of(info.st_mode)}"])
    return info


def read_config_bytes(file: Path, create_hint: str | None = None) -> bytes:
    """The bytes of a configuration file: a regular file no larger than the limit."""
    megabytes = env_limit(MAX_CONFIG_ENV, DEFAULT_MAX_CONFIG_MB)
    limit = int(megabytes * 1024 * 1024)
    too_big = (
        f"larger than the {megabytes:g} MB limit for configuration files "
        f"(raise it with {MAX_CONFIG_ENV}=MEGABYTES)"
    )
    info = require_regular(file, create_hint)
    if info.st_size > limit:
        raise ConfigError(str(file), [f"{info.st_size} bytes: {too_big}"])
    try:  # O_NONBLOCK: should the path have become a FIFO since the stat, open does not block
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ConfigError(str(file), [f"cannot read: {exc.strerror or exc}"]) from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(str(file), [f"expected a regular file, got {kind_of(info.st_mode)}"])
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ConfigError(str(file), [too_big])
    return data


def decode_utf8(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text (a UTF-8 byte order mark is dropped); else a ConfigError
    saying it is not UTF-8 text, and where."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise ConfigError(source, [f"not UTF-8 text ({name}); save it as UTF-8"])
    if b"\0" in data:
        line = data.count(b"\n", 0, data.index(b"\0")) + 1
        raise ConfigError(
            source, [f"line {line}: not UTF-8 text (NUL bytes: UTF-16?); save it as UTF-8"]
        )
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.start + 1].hex()
        raise ConfigError(
            source, [f"line {line}: not UTF-8 text (byte 0x{bad} at offset {exc.start})"]
        ) from None


def read_config_text(file: Path, create_hint: str | None = None) -> str:
    """A configuration file's text: regular, within the size limit, UTF-8."""
    return decode_utf8(read_config_bytes(file, create_hint), str(file))


def file_or_folder_problem(path: Path) -> str | None:
    """Why ``path`` is not a regular file or a folder ("is a FIFO (named pipe)"), or None.

    Only ``stat`` is used: nothing is opened, so a FIFO or a device cannot block.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return f"is {kind_of(mode)}"
