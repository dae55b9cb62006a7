"""Find files under templates/: in the source tree, or packaged as deployer/_templates."""

from __future__ import annotations

from pathlib import Path

_PACKAGED = Path(__file__).with_name("_templates")
_SOURCE = Path(__file__).resolve().parent.parent / "templates"


def template_path(name: str) -> Path:
    for folder in (_PACKAGED, _SOURCE):
        candidate = folder / name
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"template {name} is missing from the deployer installation")


def read_template(name: str) -> str:
    return template_path(name).read_text(encoding="utf-8")
