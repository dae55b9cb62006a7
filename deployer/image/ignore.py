""".dockerignore-style patterns: what the python flavour leaves out of the image.

Docker's rules: a pattern is matched against a path relative to the project folder (a
leading ``/`` changes nothing), ``*`` and ``?`` never cross a ``/``, ``**`` matches any
number of folders, ``!`` re-includes, the last matching pattern wins, and a pattern that
matches a folder matches everything in it. DEFAULT_EXCLUDES come first, the project's own
``.dockerignore`` after them, so a project can re-include a default (``!.env.example``).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path

DOCKERIGNORE = ".dockerignore"
# Never needed to serve, and often secret: version control, environment files, virtual
# environments, deployer's own state (.deployer/journal ...), byte code and tool caches.
DEFAULT_EXCLUDES = (
    "**/.git",
    "**/.hg",
    "**/.svn",
    "**/.env*",
    "**/.venv",
    "**/.deployer",
    "**/__pycache__",
    "**/*.py[cod]",
    "**/.pytest_cache",
    "**/.mypy_cache",
    "**/.ruff_cache",
    "**/.hypothesis",
    "**/.tox",
    "**/.nox",
    "**/.ipynb_checkpoints",
    "**/.DS_Store",
)


@dataclass(frozen=True)
class Rule:
    """One pattern: its text, compiled, and whether it re-includes (``!``)."""

    text: str
    regex: re.Pattern[str]
    include: bool


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Docker's pattern syntax as a regular expression over a relative POSIX path."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            body = "^" + body[1:] if body.startswith(("!", "^")) else body
            out.append(f"[{body}]")
            i = end + 1
            continue
        elif char == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))


def parse(lines: list[str]) -> list[Rule]:
    """Rules from .dockerignore lines (comments and blank lines skipped)."""
    rules = []
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        include = text.startswith("!")
        cleaned = posixpath.normpath(text[1:].strip() if include else text).lstrip("/")
        if cleaned in ("", "."):
            continue
        rules.append(Rule(text, compile_pattern(cleaned), include))
    return rules


class Excludes:
    """Which paths, relative to the project folder, stay out of the image."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.has_includes = any(rule.include for rule in rules)

    @classmethod
    def for_project(cls, project: Path) -> Excludes:
        """DEFAULT_EXCLUDES, then the project's .dockerignore if it has one."""
        lines = list(DEFAULT_EXCLUDES)
        ignore_file = project / DOCKERIGNORE
        if ignore_file.is_file():
            lines += ignore_file.read_text(encoding="utf-8", errors="replace").splitlines()
        return cls(parse(lines))

    def excluded(self, relative: str) -> bool:
        """True when the last rule matching ``relative`` or one of its folders excludes."""
        parts = relative.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        result = False
        for rule in self.rules:
            if any(rule.regex.fullmatch(prefix) for prefix in prefixes):
                result = not rule.include
        return result

    def prunes(self, relative: str) -> bool:
        """True when a folder can be skipped whole (excluded, and no ``!`` rule could
        re-include something inside it)."""
        return self.excluded(relative) and not self.has_includes
