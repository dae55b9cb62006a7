"""The README's examples are the acceptance test: what it shows a user works as shown.

- every ``deployer ...`` line in its command blocks names a real command, and each of its
  options (``--flag``, ``-o``) exists on that command;
- every YAML block that declares targets is a valid ``targets:`` section, each target's
  options accepted by its provider exactly as ``plan`` parses them;
- the configuration reference lists real fields of deployer.yaml;
- the sample configuration error is what the CLI prints for that input;
- the Python API block runs as written against a project with a local target (Docker).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from docker_support import free_port, remove_repository, write_project

from deployer.cli import app

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[str]:
    """The README's fenced blocks of ``language`` ("" for plain ones)."""
    return [body for lang, body in FENCE.findall(README.read_text()) if lang == language]


def command_lines() -> list[str]:
    """Every ``deployer ...`` line of the plain blocks, without its trailing comment."""
    lines = []
    for body in blocks(""):
        for line in body.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("deployer "):
                lines.append(line)
    return lines


# typer ships its own click (typer._click): groups and commands are told apart by what
# they offer, through typer's public names only.
def is_group(command: Any) -> bool:
    return hasattr(command, "list_commands")


def resolve(words: list[str]) -> tuple[Any, list[str], list[str]]:
    """(the command the words name, its path, the words after it)."""
    command: Any = typer.main.get_command(app)
    context = typer.Context(command)
    path: list[str] = []
    while words and is_group(command):
        sub = command.get_command(context, words[0])
        if sub is None:
            break
        command, path = sub, [*path, words.pop(0)]
        context = typer.Context(command, parent=context)
    return command, path, words


def subcommands(path: list[str]) -> list[str]:
    group, _, _ = resolve(list(path))
    assert is_group(group), path
    return list(group.list_commands(typer.Context(group)))


def options_of(command: Any) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


@pytest.mark.parametrize("line", command_lines())
def test_each_command_line_names_real_commands_and_options(line: str) -> None:
    words = shlex.split(line)[1:]
    bare = [w.strip("[]") for w in words]
    command, path, _ = resolve([w for w in bare if w and w != "|"][:4])
    assert path, f"README: `{line}` names no deployer command"
    # "validate | show | add": siblings of the resolved command
    for i, word in enumerate(words):
        if word == "|" and i + 1 < len(words) and not words[i + 1].startswith("-"):
            assert words[i + 1] in subcommands(path[:-1]), line
    known = options_of(command)
    for word in bare:
        option = word.split("=")[0]
        if re.fullmatch(r"--?[a-z][a-z-]*", option):
            assert option in known, f"README: `{line}`: {option} is not an option of {path}"


def target_blocks() -> list[dict[str, Any]]:
    return [
        loaded["targets"]
        for body in blocks("yaml")
        if isinstance(loaded := yaml.safe_load(body), dict) and "targets" in loaded
    ]


@pytest.mark.parametrize("targets", target_blocks(), ids=lambda t: ",".join(t))
def test_each_targets_block_is_accepted_by_its_providers(
    targets: dict[str, Any], tmp_path: Path
) -> None:
    from deployer import Project

    (tmp_path / "model.joblib").write_bytes(b"")
    file = tmp_path / "deployer.yaml"
    file.write_text(
        yaml.safe_dump({"name": "iris", "model": {"path": "model.joblib"}, "targets": targets})
    )
    project = Project.load(file)  # the schema, then each provider parses its options
    assert set(project.providers()) == set(targets)


def test_the_configuration_reference_lists_real_fields() -> None:
    from deployer.config import ProjectConfig

    section = README.read_text().split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    fields = re.findall(r"^\| `([a-z_.]+)`", section, re.MULTILINE)
    assert len(fields) > 15
    for dotted in fields:
        model: Any = ProjectConfig
        for part in dotted.split(".")[:-1]:
            if part == "NAME":
                break
            model = model.model_fields[part].annotation
            # an optional section (``LiveGatesConfig | None``): its model
            model = next((a for a in typing.get_args(model) if a is not type(None)), model)
        else:
            assert dotted.split(".")[-1] in model.model_fields, f"README lists {dotted}"


def test_the_sample_configuration_error_is_what_the_cli_prints(tmp_path: Path) -> None:
    sample = README.read_text().split("Configuration errors name the file", 1)[1]
    expected = FENCE.search(sample)
    assert expected is not None
    (tmp_path / "deployer.yaml").write_text(
        "name: iris\n"
        "model:\n"
        "  path: model.joblib\n"
        "  flavor: skl\n"
        "serving:\n"
        "  port: 8080\n"
        "  wrkers: 2\n"
    )
    (tmp_path / "model.joblib").write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "deployer", "validate", "--no-load"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    for line in expected.group(2).strip().splitlines():
        assert line.strip() in result.stderr, f"README shows {line!r}; the CLI said {result.stderr}"


@pytest.mark.docker
def test_the_python_api_example_runs_as_written(
    docker: Any, iris_model_file: Path, tmp_path: Path
) -> None:
    (example,) = blocks("python")
    (tmp_path / "model.joblib").write_bytes(iris_model_file.read_bytes())
    write_project(tmp_path, "readme-example", free_port())
    try:
        done = subprocess.run(
            [sys.executable, "-c", example],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        subprocess.run(
            [sys.executable, "-m", "deployer", "destroy", "--to", "local", "--yes"],
            cwd=tmp_path,
            capture_output=True,
            timeout=300,
        )
        remove_repository(docker, "readme-example")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "True" in done.stdout  # print(result.ok, ...)
