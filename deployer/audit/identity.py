"""Who runs a release and why: from CI variables, git, or the OS user; the git commit.

Who: the first CI system whose variables are set (GitHub Actions ``GITHUB_ACTOR``,
GitLab ``GITLAB_USER_LOGIN``, Buildkite ``BUILDKITE_BUILD_CREATOR``, CircleCI
``CIRCLE_USERNAME``, Jenkins ``BUILD_USER_ID``, Azure Pipelines ``BUILD_REQUESTEDFOR``,
Bitbucket ``BITBUCKET_STEP_TRIGGERER_UUID``), else git's ``user.name``/``user.email``
in the project folder, else the OS user. Why: the ``--reason`` given, and the commit
(``git rev-parse HEAD``) and its subject. Git is run as a subprocess with a timeout; no
git, no repository or a slow one leaves those fields None.
"""

from __future__ import annotations

import getpass
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

GIT_TIMEOUT = 5.0
# (variable naming the user, CI system, variable with the email, variable with the run URL)
CI_ACTORS: tuple[tuple[str, str, str | None, str | None], ...] = (
    ("GITHUB_ACTOR", "github-actions", None, None),
    ("GITLAB_USER_LOGIN", "gitlab-ci", "GITLAB_USER_EMAIL", "CI_JOB_URL"),
    (
        "BUILDKITE_BUILD_CREATOR",
        "buildkite",
        "BUILDKITE_BUILD_CREATOR_EMAIL",
        "BUILDKITE_BUILD_URL",
    ),
    ("CIRCLE_USERNAME", "circleci", None, "CIRCLE_BUILD_URL"),
    ("BUILD_USER_ID", "jenkins", "BUILD_USER_EMAIL", "BUILD_URL"),
    ("BUILD_REQUESTEDFOR", "azure-pipelines", "BUILD_REQUESTEDFOREMAIL", None),
    ("BITBUCKET_STEP_TRIGGERER_UUID", "bitbucket", None, None),
)


def git(folder: Path, *args: str) -> str | None:
    """The stripped output of ``git -C folder ARGS``; None when git fails or is missing."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = done.stdout.strip()
    return text if done.returncode == 0 and text else None


def _github_run(env: Mapping[str, str]) -> str | None:
    parts = [env.get(k) for k in ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")]
    if not all(parts):
        return None
    server, repository, run = parts
    return f"{server}/{repository}/actions/runs/{run}"


def who(folder: Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{"name", "email", "source", "run"}``: source is the CI system, ``git`` or ``os``."""
    env = os.environ if env is None else env
    for variable, system, email, run in CI_ACTORS:
        if env.get(variable):
            url = env.get(run) if run else _github_run(env)
            return {
                "name": env[variable],
                "email": env.get(email) if email else None,
                "source": system,
                "run": url or None,
            }
    name, email = git(folder, "config", "user.name"), git(folder, "config", "user.email")
    if name or email:
        return {"name": name or email, "email": email, "source": "git", "run": None}
    return {"name": _os_user(), "email": None, "source": "os", "run": None}


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no passwd entry, no LOGNAME/USER
        return f"uid {os.getuid()}"


def why(folder: Path, reason: str | None) -> dict[str, Any]:
    """``{"reason", "git_commit", "git_message"}`` (None where unknown)."""
    commit = git(folder, "rev-parse", "--verify", "HEAD")
    message = git(folder, "log", "-1", "--format=%s") if commit else None
    return {"reason": reason, "git_commit": commit, "git_message": message}
