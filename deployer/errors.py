"""Errors a user can act on, each with the exit code the CLI returns for it.

Exit codes: 0 success, 1 an operation failed, 2 bad input (configuration, arguments,
model file), 3 a required tool or service is missing (Docker, a provider package).
"""

from __future__ import annotations

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


def read_config_text(file: Path, create_hint: str) -> str:
    """A configuration file's text, or a ConfigError saying it is missing or unreadable."""
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(file), ["file not found"], hint=create_hint) from None
    except OSError as exc:
        raise ConfigError(str(file), [f"cannot read: {exc.strerror}"]) from None
