"""The python flavour's code copy: default excludes, .dockerignore, symlinks (no Docker)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from deployer.image.code_copy import CodeCopyError, copy_code
from deployer.image.ignore import DEFAULT_EXCLUDES, Excludes, parse


def _tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def _project(root: Path) -> Path:
    files = {
        "predictor.py": "X = 1\n",
        "pkg/__init__.py": "",
        "pkg/model.py": "Y = 2\n",
        ".git/config": "[core]\n",
        ".env": "SECRET=1\n",
        ".env.production": "SECRET=2\n",
        "pkg/.env": "SECRET=3\n",
        ".deployer/journal/r1.json": "{}\n",
        "__pycache__/predictor.cpython-311.pyc": "x",
        "pkg/__pycache__/model.cpython-311.pyc": "x",
        "pkg/stale.pyc": "x",
        ".venv/lib/site.py": "x",
        ".pytest_cache/v/x": "x",
        "data/table.csv": "a,b\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_defaults_leave_out_secrets_state_and_caches(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    (project / ".venv" / "python").symlink_to("/usr/bin/python3")  # excluded, never followed
    target = tmp_path / "out"
    copied = copy_code(project, target, project)
    assert _tree(target) == {"predictor.py", "pkg/__init__.py", "pkg/model.py", "data/table.csv"}
    assert copied == 4


def test_copies_are_readable_by_any_user_and_writable_by_none(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    os.chmod(project / "predictor.py", 0o600)
    (project / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(project / "run.sh", 0o700)
    target = tmp_path / "out"
    copy_code(project, target, project)
    assert stat.S_IMODE((target / "predictor.py").stat().st_mode) == 0o644
    assert stat.S_IMODE((target / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((target / "pkg").stat().st_mode) == 0o755


def test_project_dockerignore_adds_and_re_includes(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    (project / ".env.example").write_text("SECRET=\n")
    (project / ".dockerignore").write_text("# local\ndata/\n/pkg/model.py\n!.env.example\n")
    target = tmp_path / "out"
    copy_code(project, target, project)
    assert _tree(target) == {"predictor.py", "pkg/__init__.py", ".env.example", ".dockerignore"}


def test_a_subfolder_is_matched_relative_to_the_project(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    (project / ".dockerignore").write_text("pkg/model.py\n")
    target = tmp_path / "out"
    copy_code(project / "pkg", target, project)
    assert _tree(target) == {"__init__.py"}


def test_a_declared_file_is_copied_alone(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    target = tmp_path / "out"
    assert copy_code(project / "predictor.py", target, project) == 1
    assert _tree(target) == {"predictor.py"}


def test_symlink_inside_the_project_is_followed(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    (project / "alias.py").symlink_to("predictor.py")
    (project / "lib").symlink_to("pkg", target_is_directory=True)
    target = tmp_path / "out"
    copy_code(project, target, project)
    assert (target / "alias.py").read_text() == "X = 1\n"
    assert not (target / "alias.py").is_symlink()
    assert (target / "lib" / "model.py").read_text() == "Y = 2\n"


@pytest.mark.parametrize("where", ["top", "nested", "folder", "declared"])
def test_symlink_leaving_the_project_is_refused_naming_link_and_target(
    tmp_path: Path, where: str
) -> None:
    project = _project(tmp_path / "project")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "id_rsa").write_text("PRIVATE\n")
    link = {
        "top": project / "key",
        "nested": project / "pkg" / "key",
        "folder": project / "home",
        "declared": project / "code",
    }[where]
    destination = outside if where in ("folder", "declared") else outside / "id_rsa"
    link.symlink_to(destination, target_is_directory=destination.is_dir())
    source = link if where == "declared" else project
    with pytest.raises(CodeCopyError) as caught:
        copy_code(source, tmp_path / "out", project)
    assert caught.value.exit_code == 2
    assert str(link) in caught.value.message
    assert str(destination) in caught.value.message
    assert "outside the project" in caught.value.message
    assert not (tmp_path / "out" / "key").exists()


def test_an_escaping_symlink_listed_in_dockerignore_is_left_out(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    (project / "key").symlink_to("/etc/hostname")
    (project / ".dockerignore").write_text("key\n")
    copy_code(project, tmp_path / "out", project)
    assert not (tmp_path / "out" / "key").exists()


def test_dangling_and_looping_symlinks_are_refused(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    (project / "gone").symlink_to(project / "missing.py")
    with pytest.raises(CodeCopyError, match="does not exist"):
        copy_code(project, tmp_path / "out", project)
    (project / "gone").unlink()
    (project / "pkg" / "up").symlink_to(project, target_is_directory=True)
    with pytest.raises(CodeCopyError, match="a loop"):
        copy_code(project, tmp_path / "out2", project)


def test_a_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    os.mkfifo(project / "pipe")
    with pytest.raises(CodeCopyError, match="not a regular file") as caught:
        copy_code(project, tmp_path / "out", project)
    assert str(project / "pipe") in caught.value.message


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        (["*.md"], "README.md", True),
        (["*.md"], "docs/README.md", False),  # docker's patterns are anchored
        (["**/*.md"], "docs/deep/README.md", True),
        (["docs"], "docs/deep/README.md", True),  # a folder takes its contents
        (["docs", "!docs/keep.md"], "docs/keep.md", False),
        (["docs/*/x"], "docs/a/b/x", False),
        (["docs/**/x"], "docs/a/b/x", True),
        (["/secret?.txt"], "secret1.txt", True),
        (["secret[0-9].txt"], "secretA.txt", False),
        (["secret[!0-9].txt"], "secretA.txt", True),
    ],
)
def test_dockerignore_pattern_semantics(patterns: list[str], path: str, excluded: bool) -> None:
    assert Excludes(parse(patterns)).excluded(path) is excluded


@pytest.mark.parametrize(
    "path",
    [".git/HEAD", ".env", ".env.local", "a/.env", ".deployer/journal/x.json", "a/b/x.pyc"],
)
def test_default_excludes(path: str) -> None:
    assert Excludes(parse(list(DEFAULT_EXCLUDES))).excluded(path)


def test_a_check_walks_the_same_without_writing(tmp_path: Path) -> None:
    project = _project(tmp_path / "project")
    assert copy_code(project, None, project) == 4
    (project / "key").symlink_to("/etc/hostname")
    with pytest.raises(CodeCopyError, match="outside the project"):
        copy_code(project, None, project)
