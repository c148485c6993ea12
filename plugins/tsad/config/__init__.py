"""What a deployment is configured with: typed, validated, serialisable settings.

``schema`` holds the dataclasses (one per YAML section), ``loading`` turns YAML into them with
errors that name the key path, ``shards`` splits a large group into units of work. Importing
this package is cheap (no YAML parser, no pandas).
"""

from tsad.config.loading import (DEFAULT_CONFIG, config_path, from_dict, group_config_from_dict,
                                 load_config, resolve_paths)
from tsad.config.schema import (AlertConfig, DatabaseConfig, EventConfig, GroupConfig,
                                ModelConfig, QualityConfig, SeverityRoute, ShardConfig, Snooze,
                                SourceConfig, ThresholdConfig, TrainingConfig, TsadConfig,
                                WindowConfig)

__all__ = [
    "DEFAULT_CONFIG", "AlertConfig", "DatabaseConfig", "EventConfig", "GroupConfig",
    "ModelConfig", "QualityConfig", "SeverityRoute", "ShardConfig", "Snooze", "SourceConfig",
    "ThresholdConfig", "TrainingConfig", "TsadConfig", "WindowConfig", "config_path", "from_dict",
    "group_config_from_dict", "load_config", "resolve_paths",
]
