"""Who and why: CI variables first, then git's user, then the OS user; the git commit and
its subject from a real temporary repository; no git at all is tolerated."""

from __future__ import annotations

import getpass
import subprocess
from pathlib import Path

import pytest

from deployer.audit.identity import who, why


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repository(tmp_path: Path, identity: None) -> Path:
    folder = tmp_path / "repo"
    folder.mkdir()
    git(folder, "init", "-q")
    git(folder, "config", "user.name", "Ada Lovelace")
    git(folder, "config", "user.email", "ada@example.com")
    (folder / "model.txt").write_text("1\n")
    git(folder, "add", "model.txt")
    git(folder, "commit", "-q", "-m", "Retrain on the March data")
    return folder


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"GITHUB_ACTOR": "octocat"}, ("octocat", None, "github-actions")),
        (
            {"GITLAB_USER_LOGIN": "gl", "GITLAB_USER_EMAIL": "gl@example.com"},
            ("gl", "gl@example.com", "gitlab-ci"),
        ),
        ({"BUILDKITE_BUILD_CREATOR": "Bea"}, ("Bea", None, "buildkite")),
    ],
)
def test_ci_variables_name_who(
    tmp_path: Path, identity: None, env: dict[str, str], expected: tuple[str, str | None, str]
) -> None:
    found = who(tmp_path, env)
    assert (found["name"], found["email"], found["source"]) == expected


def test_github_names_the_run(tmp_path: Path, identity: None) -> None:
    env = {
        "GITHUB_ACTOR": "octocat",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "org/repo",
        "GITHUB_RUN_ID": "42",
    }
    assert who(tmp_path, env)["run"] == "https://github.com/org/repo/actions/runs/42"


def test_ci_wins_over_git(repository: Path) -> None:
    assert who(repository, {"GITHUB_ACTOR": "octocat"})["source"] == "github-actions"


def test_git_user_without_ci(repository: Path) -> None:
    found = who(repository, {})
    assert found == {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "source": "git",
        "run": None,
    }


def test_why_has_the_reason_commit_and_message(repository: Path) -> None:
    found = why(repository, "quarterly refresh")
    assert found["reason"] == "quarterly refresh"
    assert found["git_commit"] == git(repository, "rev-parse", "HEAD")
    assert found["git_message"] == "Retrain on the March data"


def test_outside_a_repository_the_os_user_and_no_commit(tmp_path: Path, identity: None) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    assert who(folder, {}) == {
        "name": getpass.getuser(),
        "email": None,
        "source": "os",
        "run": None,
    }
    assert why(folder, None) == {"reason": None, "git_commit": None, "git_message": None}


def test_no_git_installed_is_tolerated(repository: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(repository / "no-bin"))
    assert who(repository, {})["source"] == "os"
    assert why(repository, "r")["git_commit"] is None
