"""Copy the python flavour's declared code into the build context, and nothing else.

Folders are copied without what ``ignore.Excludes`` leaves out (DEFAULT_EXCLUDES, then
the project's ``.dockerignore``); a file named in ``model.code`` is copied as declared.
A symlink is followed only when its target stays inside the project folder: one that
leaves it (or dangles, or loops) stops the build with exit 2 naming the link and its
target, as does a FIFO, socket or device. Every copy is readable by any user id (files
0644, or 0755 when executable; folders 0755), so the image's non-root user can read it.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from deployer.errors import EXIT_BAD_INPUT, DeployerError
from deployer.image.ignore import DOCKERIGNORE, Excludes

_HINT = f"copy what the link points to into the project, or list the link in {DOCKERIGNORE}"


class CodeCopyError(DeployerError):
    """Declared code that cannot go into the image as it is."""

    exit_code = EXIT_BAD_INPUT


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _real(path: Path, boundary: Path) -> Path:
    """Where ``path`` leads, refused if a link takes it out of ``boundary`` or nowhere."""
    real = Path(os.path.realpath(path))
    if real != Path(os.path.abspath(path)) and not _inside(real, boundary):
        raise CodeCopyError(
            f"{path}: a symlink to {real}, which is outside the project folder {boundary}",
            hint=_HINT,
        )
    if not real.exists():
        if not os.path.islink(path) and real == Path(os.path.abspath(path)):
            raise CodeCopyError(f"{path}: no such file or folder (declared in model.code)")
        raise CodeCopyError(f"{path}: a symlink to {real}, which does not exist", hint=_HINT)
    return real


def _regular_mode(source: Path, real: Path) -> int:
    """``real``'s mode, refused unless it is a regular file (never opened: a FIFO hangs)."""
    mode = real.stat().st_mode
    if not stat.S_ISREG(mode):
        raise CodeCopyError(
            f"{source}: not a regular file or folder (a FIFO, socket or device)",
            hint=f"remove it or list it in {DOCKERIGNORE}",
        )
    return mode


class _Copier:
    def __init__(self, boundary: Path, excludes: Excludes, write: bool) -> None:
        self.boundary = boundary
        self.excludes = excludes
        self.write = write  # False: check only (the same walk, nothing written)
        self.files = 0

    def file(self, source: Path, real: Path, target: Path) -> None:
        mode = _regular_mode(source, real)
        if self.write:
            shutil.copyfile(real, target)
            os.chmod(target, 0o755 if mode & stat.S_IXUSR else 0o644)
        self.files += 1

    def folder(
        self, source: Path, real: Path, relative: str, target: Path, seen: frozenset[Path]
    ) -> None:
        if self.write:
            target.mkdir(parents=True, exist_ok=True)
            os.chmod(target, 0o755)
        for name in sorted(os.listdir(real)):
            path = source / name
            rel = f"{relative}/{name}" if relative else name
            excluded = self.excludes.excluded(rel)
            if excluded and (path.is_symlink() or not path.is_dir() or self.excludes.prunes(rel)):
                continue
            entry = _real(path, self.boundary)
            if entry.is_dir():
                if entry in seen:
                    raise CodeCopyError(
                        f"{path}: a symlink to {entry}, a folder that contains it (a loop)",
                        hint=_HINT,
                    )
                self.folder(path, entry, rel, target / name, seen | {entry})
            elif not excluded:
                self.file(path, entry, target / name)


def copy_code(source: Path, target: Path | None, project: Path) -> int:
    """Copy ``source`` (a folder's contents, or one file) into the folder ``target``; paths
    under ``project`` are matched against its excludes and must not leave it. Returns the
    number of files copied. ``target`` None checks the same without copying anything."""
    declared = Path(os.path.abspath(source))
    real_project = Path(os.path.realpath(project))
    bases = [b for b in (Path(os.path.abspath(project)), real_project) if _inside(declared, b)]
    if bases:
        boundary, relative = real_project, os.path.relpath(declared, bases[0])
        excludes = Excludes.for_project(real_project)
    else:  # a folder outside the project: its own boundary and .dockerignore
        boundary = Path(os.path.realpath(declared if declared.is_dir() else declared.parent))
        relative = "."
        excludes = Excludes.for_project(boundary)
    real = _real(declared, boundary)
    copier = _Copier(boundary, excludes, write=target is not None)
    folder = target or Path(os.devnull)
    if real.is_dir():
        copier.folder(
            declared, real, "" if relative == "." else relative, folder, frozenset({real})
        )
    else:
        if target is not None:
            target.mkdir(parents=True, exist_ok=True)
            os.chmod(target, 0o755)
        copier.file(declared, real, folder / declared.name)
    return copier.files
