"""ftops.config: `ftops.yaml` parsed with source positions, interpolated, validated, path-checked.

Entry points: `find_config`, `load_config` (raises `FtopsError` with every diagnostic) and
`config_json_schema`. Imports only `ftops.diagnostics` from ftops.
"""

from __future__ import annotations

from .loader import (
    CONFIG_FILENAME,
    DATASET_FIELDS,
    LoadedConfig,
    find_config,
    load_config,
)
from .models import (
    HYPERPARAMETERS_BY_METHOD,
    METHODS,
    DpoHyperparameters,
    FtopsConfig,
    Hyperparameters,
    ModelConfig,
    ProviderConfig,
    RateLimits,
    ReinforcementHyperparameters,
    SupervisedHyperparameters,
    WandbIntegration,
    WandbSettings,
)
from .project import PLACEHOLDER_PROJECTS, is_placeholder_project, unique_project_name
from .schema import config_json_schema

__all__ = [
    "CONFIG_FILENAME",
    "DATASET_FIELDS",
    "HYPERPARAMETERS_BY_METHOD",
    "METHODS",
    "PLACEHOLDER_PROJECTS",
    "DpoHyperparameters",
    "FtopsConfig",
    "Hyperparameters",
    "LoadedConfig",
    "ModelConfig",
    "ProviderConfig",
    "RateLimits",
    "ReinforcementHyperparameters",
    "SupervisedHyperparameters",
    "WandbIntegration",
    "WandbSettings",
    "config_json_schema",
    "find_config",
    "is_placeholder_project",
    "load_config",
    "unique_project_name",
]
