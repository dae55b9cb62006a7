"""deployer.yaml's targets as provider instances: each target's plugin, given its options
(which the plugin validates) and what it may know of the project."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployer.errors import ConfigError, UsageError
from deployer.image.spec import base_image

if TYPE_CHECKING:
    from deployer.config import ProjectConfig
    from deployer.providers import Provider


def providers_for(
    config: ProjectConfig, file: Path, names: list[str] | None = None
) -> dict[str, Provider]:
    """Provider instances for the named targets (all targets when ``names`` is None);
    ``file`` names deployer.yaml in errors. Every target's invalid options are reported
    together, each at its line in deployer.yaml."""
    from deployer.providers import ProjectInfo, Target, provider_class
    from deployer.providers.options import OptionsError

    targets = config.targets
    chosen = list(targets) if names is None else names
    unknown = [n for n in chosen if n not in targets]
    if unknown:
        known = ", ".join(targets) or "none"
        raise UsageError(
            f"no target {unknown[0]!r} in {file} (targets: {known})",
            hint="add it under 'targets:' in deployer.yaml",
        )
    if not chosen:
        raise UsageError(f"{file} defines no targets", hint="add one under 'targets:'")
    image = config.image
    info = ProjectInfo(
        config.name, base_image(image.base), image.platform, image.python, str(file.parent)
    )
    result: dict[str, Provider] = {}
    errors: list[dict[str, Any]] = []
    plugins: dict[str, type[Provider]] = {}  # one entry-point scan per provider kind
    for name in chosen:
        target = targets[name]
        if target.provider not in plugins:
            plugins[target.provider] = provider_class(target.provider)
        plugin = plugins[target.provider]
        try:
            result[name] = plugin(Target(name, target.provider, target.model_dump()), info)
        except OptionsError as exc:  # the plugin's own checks, placed at their lines
            errors += exc.errors
    if errors:
        raise ConfigError(str(file), config.describe(errors))
    return result
