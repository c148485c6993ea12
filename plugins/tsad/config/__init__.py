"""What a deployment is configured with: typed, validated, serialisable settings.

``schema`` holds the deployment's dataclasses (one per YAML section), ``detector_config`` the
settings that shape a model (``DetectorConfig``: nothing of the source), ``loading`` turns YAML
into them with errors that name the key path, ``shards`` splits a large group into units. Importing
this package is cheap (no YAML parser, no pandas).
"""

from tsad.config.detector_config import (DetectorConfig, ModelConfig, ThresholdConfig,
                                         WindowConfig)
from tsad.config.loading import (DEFAULT_CONFIG, config_path, from_dict, group_config_from_dict,
                                 load_config, resolve_paths)
from tsad.config.schema import (AlertConfig, DatabaseConfig, EventConfig, GroupConfig,
                                QualityConfig, SeverityRoute, ShardConfig, Snooze, SourceConfig,
                                TrainingConfig, TsadConfig)

__all__ = [
    "DEFAULT_CONFIG", "AlertConfig", "DatabaseConfig", "DetectorConfig", "EventConfig", "GroupConfig",
    "ModelConfig", "QualityConfig", "SeverityRoute", "ShardConfig", "Snooze", "SourceConfig",
    "ThresholdConfig", "TrainingConfig", "TsadConfig", "WindowConfig", "config_path", "from_dict",
    "group_config_from_dict", "load_config", "resolve_paths",
]
