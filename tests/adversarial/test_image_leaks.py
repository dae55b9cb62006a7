"""Adversarial: the model image's build context never carries a project's secrets or
state, nor anything a symlink reaches outside the project (no Docker needed: what is not
in the context cannot be in the image)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployer import Project
from deployer.image import context
from deployer.image.code_copy import CodeCopyError

SECRET = "LEAKED-SECRET-7f3a"
# Where secrets and state sit in real projects, at any depth.
SECRET_NAMES = (".env", ".env.local", ".env.production", ".envrc")
SECRET_FOLDERS = (".git", ".deployer", ".venv", "__pycache__", ".pytest_cache")
PREDICTOR = "class Predictor:\n    def predict(self, rows, parameters):\n        return rows\n"


def _project(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "leaks_predictor.py").write_text(PREDICTOR)
    (folder / "deployer.yaml").write_text(
        "name: leaks\nmodel:\n  flavor: python\n  predictor: leaks_predictor:Predictor\n"
    )
    return folder / "deployer.yaml"


def _assemble(config: Path, out: Path) -> Path:
    wheels = out / "wheels"
    wheels.mkdir(parents=True)
    (wheels / "requirements.txt").write_text("")
    spec = Project.load(config).build_spec()
    built = context.assemble(spec, wheels, out / "context")
    return built.path


def _leaks(folder: Path) -> list[str]:
    found = []
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root) / name
            if SECRET.encode() in path.read_bytes():
                found.append(str(path.relative_to(folder)))
    return found


subfolders = st.lists(st.sampled_from(["src", "pkg", "a", "b", "deep"]), max_size=3)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    placements=st.lists(
        st.tuples(subfolders, st.sampled_from(SECRET_NAMES + SECRET_FOLDERS)),
        min_size=1,
        max_size=6,
    )
)
def test_secrets_and_state_at_any_depth_stay_out(
    tmp_path_factory: pytest.TempPathFactory, placements: list[tuple[list[str], str]]
) -> None:
    base = tmp_path_factory.mktemp("leaks")
    config = _project(base / "project")
    for parents, name in placements:
        where = base / "project" / Path(*parents) if parents else base / "project"
        if name in SECRET_FOLDERS:
            (where / name / "inner").mkdir(parents=True, exist_ok=True)
            (where / name / "inner" / "token").write_text(SECRET)
        else:
            where.mkdir(parents=True, exist_ok=True)
            (where / name).write_text(SECRET)
    built = _assemble(config, base / "out")
    assert _leaks(built) == []
    assert (built / "code" / "0" / "leaks_predictor.py").is_file()


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_a_chain_of_links_ending_outside_is_refused(tmp_path: Path, hops: int) -> None:
    config = _project(tmp_path / "project")
    secret = tmp_path / "home" / ".aws" / "credentials"
    secret.parent.mkdir(parents=True)
    secret.write_text(SECRET)
    previous = secret
    for hop in range(hops):  # project/l0 -> project/l1 -> ... -> outside
        link = tmp_path / "project" / f"l{hops - 1 - hop}"
        link.symlink_to(previous)
        previous = link
    with pytest.raises(CodeCopyError) as caught:
        _assemble(config, tmp_path / "out")
    assert str(secret) in caught.value.message
    assert caught.value.exit_code == 2
    assert _leaks(tmp_path / "out") == []


def test_a_link_to_the_parent_folder_is_refused(tmp_path: Path) -> None:
    config = _project(tmp_path / "project")
    (tmp_path / "sibling.txt").write_text(SECRET)
    (tmp_path / "project" / "up").symlink_to("..", target_is_directory=True)
    with pytest.raises(CodeCopyError, match="outside the project"):
        _assemble(config, tmp_path / "out")
