"""The router's templates (deployer_router/templates/): engine configs and Dockerfiles."""

from __future__ import annotations

from pathlib import Path

TEMPLATES = Path(__file__).with_name("templates")


def template_path(name: str) -> Path:
    path = TEMPLATES / name
    if not path.is_file():
        raise FileNotFoundError(f"template {name} is missing from the deployer-router installation")
    return path


def read_template(name: str) -> str:
    return template_path(name).read_text(encoding="utf-8")
