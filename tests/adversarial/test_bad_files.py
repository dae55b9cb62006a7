"""Bad files, as an adversary writes them: each gives exit 2 naming the file (and the line
where there is one), never a traceback or "this is a bug", and never hangs.

Every CLI run is a real subprocess with a timeout, so a hang fails the test instead of
hanging the run (issue 14, "Bad files").
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployer.errors import ConfigError, DeployerError

TIMEOUT = 30  # seconds: far above the second these take; only a hang reaches it
GOOD = "name: demo\nmodel:\n  path: model.onnx\n"


def deployer(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI; a hang raises TimeoutExpired (the test fails, the run goes on)."""
    return subprocess.run(
        [sys.executable, "-m", "deployer", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})},
    )


def assert_bad_input(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    """Exit 2, each of ``expected`` in the message, no traceback, no "this is a bug"."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    assert "this is a bug" not in output, output
    for text in expected:
        assert text in output, output
    return output


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with a (placeholder) model file; tests write deployer.yaml themselves."""
    (tmp_path / "model.onnx").write_bytes(b"placeholder")
    return tmp_path


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    try:
        yield path
    finally:
        server.close()


# -- encodings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoded", "where"),
    [
        (GOOD.encode("utf-16"), "UTF-16 byte order mark"),
        (GOOD.encode("utf-16-le"), "line 1: not UTF-8 text"),
        (GOOD.encode("utf-16-be"), "line 1: not UTF-8 text"),
        (GOOD.encode("utf-32"), "UTF-32 byte order mark"),
        ((GOOD + "# caf\u00e9\n").encode("latin-1"), "line 4: not UTF-8 text (byte 0xe9"),
    ],
    ids=["utf16-bom", "utf16le", "utf16be", "utf32", "latin1"],
)
def test_a_file_that_is_not_utf8_is_named(project: Path, encoded: bytes, where: str) -> None:
    (project / "deployer.yaml").write_bytes(encoded)
    result = deployer("validate", "--no-load", cwd=project)
    assert_bad_input(result, "deployer.yaml", "not UTF-8 text", where)


def test_a_utf8_byte_order_mark_is_accepted(project: Path) -> None:
    (project / "deployer.yaml").write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    result = deployer("validate", "--no-load", cwd=project)
    assert result.returncode == 0, result.stderr


def test_a_control_character_names_its_line(project: Path) -> None:
    (project / "deployer.yaml").write_text(GOOD + "image:\n  base: a\x01b\n")
    result = deployer("validate", "--no-load", cwd=project)
    assert_bad_input(result, "deployer.yaml", "line 5:", "control characters")


# -- what the file is ------------------------------------------------------------------


def special_file(kind: str, folder: Path, unix_socket: Path) -> Path:
    """A FIFO, /dev/zero, a folder or a socket: never a regular file."""
    if kind == "fifo":
        path = folder / "pipe"
        os.mkfifo(path)
        return path
    if kind == "folder":
        path = folder / "a-folder.yaml"
        path.mkdir()
        return path
    if kind == "socket":
        return unix_socket
    return Path("/dev/zero")


KINDS = {
    "fifo": "a FIFO (named pipe)",
    "dev-zero": "a character device",
    "folder": "a directory",
    "socket": "a socket",
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_config_that_is_not_a_regular_file_is_refused(
    project: Path, unix_socket: Path, kind: str
) -> None:
    config = special_file(kind, project, unix_socket)
    result = deployer("validate", "--no-load", "-f", str(config), cwd=project)
    assert_bad_input(result, str(config), "expected a regular file", KINDS[kind])


@pytest.mark.parametrize("load", ["--no-load", "--load"])
@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "socket"])
def test_a_model_path_that_is_not_a_file_or_folder_is_refused(
    project: Path, unix_socket: Path, kind: str, load: str
) -> None:
    model = special_file(kind, project, unix_socket)
    (project / "deployer.yaml").write_text(f"name: demo\nmodel:\n  flavor: onnx\n  path: {model}\n")
    result = deployer("validate", load, cwd=project)
    assert_bad_input(result, "deployer.yaml", "line 4: model.path:", KINDS[kind])


def test_a_lock_file_that_is_a_fifo_is_refused(project: Path) -> None:
    (project / "deployer.yaml").write_text(GOOD)
    os.mkfifo(project / "deployer.lock")
    result = deployer("validate", "--no-load", cwd=project)
    assert_bad_input(result, "deployer.lock", "a FIFO (named pipe)")


def test_a_lock_file_that_is_not_json_names_its_line(project: Path) -> None:
    (project / "deployer.yaml").write_text(GOOD)
    (project / "deployer.lock").write_text('{\n  "model_sha256": "x",\n  oops\n}\n')
    result = deployer("validate", "--no-load", cwd=project)
    assert_bad_input(result, "deployer.lock", "line 3: invalid JSON")


# -- size ------------------------------------------------------------------------------


def test_a_huge_config_is_refused_from_its_size(project: Path) -> None:
    config = project / "deployer.yaml"
    config.write_text(GOOD)
    os.truncate(config, 50 * 1024 * 1024)  # 50 MB, sparse: refused before it is read
    result = deployer("validate", "--no-load", cwd=project)
    assert_bad_input(result, "deployer.yaml", "1 MB limit", "DEPLOYER_MAX_CONFIG_MB")


def test_the_size_limit_is_set_by_an_environment_variable(project: Path) -> None:
    (project / "deployer.yaml").write_text(GOOD + "#" + "x" * 4096 + "\n")
    tight = deployer("validate", "--no-load", cwd=project, env={"DEPLOYER_MAX_CONFIG_MB": "0.001"})
    assert_bad_input(tight, "deployer.yaml", "0.001 MB limit")
    default = deployer("validate", "--no-load", cwd=project)
    assert default.returncode == 0, default.stderr


def test_a_bad_limit_in_the_environment_is_named(project: Path) -> None:
    (project / "deployer.yaml").write_text(GOOD)
    result = deployer("validate", "--no-load", cwd=project, env={"DEPLOYER_MAX_CONFIG_MB": "lots"})
    assert_bad_input(result, "DEPLOYER_MAX_CONFIG_MB", "'lots'")


# -- YAML structure --------------------------------------------------------------------


def billion_laughs(levels: int = 9) -> str:
    """Nine levels of ten aliases each: 10**9 nodes once expanded."""
    lines = ['lol0: &lol0 ["lol"]']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*lol{level - 1}"] * 10)
        lines.append(f"lol{level}: &lol{level} [{refs}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("command", [["validate", "--no-load"], ["plan", "--to", "local"]])
def test_exponential_aliases_fail_fast(project: Path, command: list[str]) -> None:
    (project / "deployer.yaml").write_text(
        GOOD + billion_laughs() + "targets:\n  local:\n    provider: local\n    labels: *lol9\n"
    )
    result = deployer(*command, cwd=project)
    output = assert_bad_input(
        result, "deployer.yaml", "aliases expanded", "DEPLOYER_MAX_YAML_NODES"
    )
    assert "line " in output


def test_an_alias_inside_itself_is_refused(project: Path) -> None:
    (project / "deployer.yaml").write_text(GOOD + "loop: &loop [1, *loop]\n")
    result = deployer("validate", "--no-load", cwd=project)
    assert_bad_input(result, "deployer.yaml", "line 4:", "refers to a node that contains it")


@pytest.mark.parametrize(
    "deep",
    [
        "x: " + "[" * 20_000 + "]" * 20_000 + "\n",
        "x: " + "{a: " * 20_000 + "1" + "}" * 20_000 + "\n",
        "x:\n" + "".join("  " * i + "k:\n" for i in range(1, 200)),
    ],
    ids=["flow-sequence", "flow-mapping", "block"],
)
def test_deep_nesting_is_refused_at_its_line(project: Path, deep: str) -> None:
    (project / "deployer.yaml").write_text(GOOD + deep)
    result = deployer("validate", "--no-load", cwd=project)
    output = assert_bad_input(result, "deployer.yaml", "line ")
    assert "nest" in output, output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD + "name: other\n", "line 4: duplicate key 'name' (lines 1 and 4)"),
        (GOOD.replace("  path", "  flavor: onnx\n  flavor: sklearn\n  path"), "lines 3 and 4"),
        ("name: demo\nmodel: {path: model.onnx, path: x.onnx}\n", "twice on line 2"),
    ],
    ids=["top-level", "nested", "flow"],
)
def test_duplicate_keys_name_both_lines(project: Path, text: str, expected: str) -> None:
    (project / "deployer.yaml").write_text(text)
    result = deployer("validate", "--no-load", cwd=project)
    assert_bad_input(result, "deployer.yaml", "duplicate key", expected)


def test_a_value_yaml_cannot_convert_names_its_line(project: Path) -> None:
    (project / "deployer.yaml").write_text(GOOD + "image:\n  base: 2024-13-45\n")
    result = deployer("validate", "--no-load", cwd=project)
    assert_bad_input(result, "deployer.yaml", "line 5:", "2024-13-45")


def test_a_huge_integer_is_shown_cut(project: Path) -> None:
    (project / "deployer.yaml").write_text(f"name: {'9' * 5000}\nmodel: {{path: model.onnx}}\n")
    result = deployer("validate", "--no-load", cwd=project)
    output = assert_bad_input(result, "deployer.yaml", "line 1: invalid value '999", "...")
    assert len(output) < 2000, output


# -- provider options: validate checks them as plan does -------------------------------

BAD_OPTIONS = (
    GOOD + 'targets:\n  local:\n    provider: local\n    bogus: 1\n    restricted: "maybe"\n'
)


@pytest.mark.parametrize("command", [["validate", "--no-load"], ["plan", "--to", "local"]])
def test_provider_options_are_checked_with_their_lines(project: Path, command: list[str]) -> None:
    (project / "deployer.yaml").write_text(BAD_OPTIONS)
    result = deployer(*command, cwd=project)
    assert_bad_input(
        result,
        "deployer.yaml",
        "line 7: targets.local.bogus: unknown field",
        "line 8: targets.local.restricted:",
        "'maybe'",
    )


def test_many_bad_targets_get_a_short_answer(project: Path) -> None:
    targets = "".join(f"  t{i}: {{provider: local, bogus: {i}}}\n" for i in range(2000))
    (project / "deployer.yaml").write_text(GOOD + "targets:\n" + targets)
    result = deployer("validate", "--no-load", cwd=project)
    output = assert_bad_input(result, "deployer.yaml", "line 5: targets.t0.bogus", "more problems")
    assert len(output.splitlines()) < 40, output


def test_an_unknown_provider_is_named_by_validate(project: Path) -> None:
    (project / "deployer.yaml").write_text(GOOD + "targets:\n  x:\n    provider: nosuchcloud\n")
    result = deployer("validate", "--no-load", cwd=project)
    output = result.stdout + result.stderr
    assert result.returncode in (2, 3), output
    assert "nosuchcloud" in output, output
    assert "Traceback" not in output and "this is a bug" not in output, output


# -- router.yaml (deployer router serve loads it through the same reader) --------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("version: 1\nname: r\nbackends: []\n" + billion_laughs(), "aliases expanded"),
        ("version: 1\nname: r\nname: s\nbackends: []\n", "line 3: duplicate key 'name'"),
        ("version: 1\nname: r\nbackends: []\n".encode("utf-16"), "not UTF-8 text"),
        ("version: 1\nname: r\nbackends: " + "[" * 5000 + "]" * 5000 + "\n", "line 3"),
    ],
    ids=["aliases", "duplicate", "utf16", "deep"],
)
def test_router_serve_refuses_a_bad_router_yaml(
    tmp_path: Path, content: str | bytes, expected: str
) -> None:
    manifest = tmp_path / "router.yaml"
    if isinstance(content, bytes):
        manifest.write_bytes(content)
    else:
        manifest.write_text(content)
    result = deployer("router", "serve", str(manifest), "--port", "0", cwd=tmp_path)
    assert_bad_input(result, "router.yaml", expected)


def test_router_serve_refuses_a_fifo(tmp_path: Path) -> None:
    manifest = tmp_path / "router.yaml"
    os.mkfifo(manifest)
    result = deployer("router", "serve", str(manifest), "--port", "0", cwd=tmp_path)
    assert_bad_input(result, "router.yaml", "a FIFO (named pipe)")


# -- anything at all: a ConfigError or a config, nothing else --------------------------


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_bytes_load_or_fail_as_a_config_error(tmp_path: Path, data: bytes) -> None:
    from deployer.config import load_config

    config = tmp_path / "deployer.yaml"
    config.write_bytes(data)
    try:
        load_config(config)
    except ConfigError as exc:
        assert str(config) in str(exc)


YAML_PIECES = st.sampled_from(
    [
        "name: demo\n",
        "model:\n",
        "  path: m.onnx\n",
        "&a ",
        "*a ",
        "[",
        "]",
        "{",
        "}",
        ", ",
        "- ",
        "key: ",
        "? ",
        "!!str ",
        "!!binary ",
        "<<: *a\n",
        "\n",
        "  ",
        "'",
        '"',
        "#",
        "|\n",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(YAML_PIECES, max_size=40).map("".join))
def test_yaml_like_text_parses_or_fails_as_a_config_error(text: str) -> None:
    from deployer.config import parse_config
    from deployer.router.manifest import parse

    for load in (parse_config, parse):
        try:
            load(text, "fuzz.yaml")
        except DeployerError as exc:
            assert isinstance(exc, ConfigError), exc
            assert "fuzz.yaml" in str(exc)


# -- other files deployer reads --------------------------------------------------------


def test_a_request_body_file_that_is_a_fifo_is_refused(project: Path) -> None:
    (project / "deployer.yaml").write_text(GOOD + "targets:\n  local:\n    provider: local\n")
    os.mkfifo(project / "body.json")
    result = deployer("predict", "--to", "local", "-d", "@body.json", cwd=project)
    assert_bad_input(result, "body.json", "a FIFO (named pipe)")


def test_a_bearer_token_file_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    os.mkfifo(token)
    code = (
        "from deployer.router.auth import BearerSigner\n"
        f"BearerSigner(token_file={str(token)!r}).refresh()"
    )
    result = subprocess.run(  # a subprocess: were the FIFO opened, the timeout ends it
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT
    )
    assert result.returncode != 0
    assert "RuntimeError: cannot read token file" in result.stderr, result.stderr
    assert "a FIFO (named pipe)" in result.stderr, result.stderr


def test_init_refuses_a_model_that_is_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "model.joblib")
    result = deployer("init", "--model", "model.joblib", cwd=tmp_path)
    assert_bad_input(result, "model.joblib", "a FIFO (named pipe)")
    assert not (tmp_path / "deployer.yaml").exists()


@pytest.mark.parametrize(
    ("variable", "text", "refused"),
    [
        (
            "DEPLOYER_MAX_YAML_DEPTH",
            "x:\n" + "".join("  " * i + "k:\n" for i in range(1, 100)),
            "nested deeper",
        ),
        ("DEPLOYER_MAX_YAML_NODES", billion_laughs(5) + "x: *lol5\n", "aliases expanded"),
    ],
    ids=["depth", "nodes"],
)
def test_yaml_limits_are_set_by_environment_variables(
    project: Path, variable: str, text: str, refused: str
) -> None:
    (project / "deployer.yaml").write_text(GOOD + text)
    tight = deployer("validate", "--no-load", cwd=project, env={variable: "50"})
    assert_bad_input(tight, "deployer.yaml", refused, variable)
    raised = deployer("validate", "--no-load", cwd=project, env={variable: "1000000"})
    output = assert_bad_input(raised, "deployer.yaml", "unknown field")  # got past the limit
    assert refused not in output, output
