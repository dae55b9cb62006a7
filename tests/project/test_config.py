"""deployer.yaml validation: every bad field is named with its line and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from deployer.config import load_config, parse_config
from deployer.errors import ConfigError

GOOD = """\
name: iris
model:
  path: model.joblib
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "deployer.yaml")
    assert caught.value.exit_code == 2
    assert caught.value.source == "deployer.yaml"
    return caught.value.problems


def test_minimal_file_gets_defaults() -> None:
    config = parse_config(GOOD, "deployer.yaml")
    assert config.name == "iris"
    assert config.serving.port == 8080
    assert config.serving.max_body_mb == 6
    assert config.image.base == "python:3.11-slim"
    assert config.model.flavor is None


def test_each_bad_field_is_reported_with_line_and_expectation() -> None:
    text = GOOD + "  flavor: skl\nserving:\n  port: 99999\n  wrkers: 2\n"
    problems = problems_of(text)
    assert len(problems) == 3
    assert problems[0].startswith("line 4: model.flavor: expected 'sklearn'")
    assert "(got 'skl')" in problems[0]
    assert problems[1].startswith("line 6: serving.port:") and "65535" in problems[1]
    assert problems[2].startswith("line 7: serving.wrkers: unknown field")


def test_missing_required_fields() -> None:
    assert problems_of("name: iris\n") == ["line 1: model: required field is missing"]


def test_bad_project_name_says_what_is_allowed() -> None:
    (problem,) = problems_of(GOOD.replace("iris", "Iris_Model"))
    assert problem.startswith("line 1: name: expected 2-40 lower-case letters")
    assert "'Iris_Model'" in problem


def test_python_flavour_needs_a_predictor() -> None:
    (problem,) = problems_of("name: custom\nmodel:\n  flavor: python\n")
    assert "model.predictor: required for the python flavour" in problem
    assert problem.startswith("line 3")  # the first line of the model block


def test_predictor_must_be_module_colon_class() -> None:
    (problem,) = problems_of("name: c1\nmodel:\n  flavor: python\n  predictor: nocolon\n")
    assert "model.predictor" in problem and "module:Class" in problem


def test_invalid_yaml_names_line_and_column() -> None:
    (problem,) = problems_of("name: [iris\n")
    assert problem.startswith("line 2, column 1: invalid YAML")


def test_not_a_mapping() -> None:
    assert problems_of("- a\n- b\n") == ["expected a mapping with at least 'name' and 'model'"]


def test_target_needs_a_provider_and_keeps_its_own_fields() -> None:
    config = parse_config(GOOD + "targets:\n  local: {provider: local, port: 9000}\n", "f")
    assert config.targets["local"].provider == "local"
    assert config.targets["local"].model_extra == {"port": 9000}
    (problem,) = problems_of(GOOD + "targets:\n  aws: {region: eu-west-1}\n")
    assert problem == "line 5: targets.aws.provider: required field is missing"


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "deployer.yaml")
    assert caught.value.problems == ["file not found"]
    assert "deployer init" in (caught.value.hint or "")
