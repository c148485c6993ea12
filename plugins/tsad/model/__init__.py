"""The model: a detector (scaler + autoencoder + score rule + threshold), how it is trained,
scored and saved, and the versioned registry of published models.

``Detector`` (``detector``) is the one interface: ``fit``, ``score``, ``score_partition``,
``reconstruct``, ``save``/``load``. Around it: ``networks`` (the autoencoders and the
cross-channel blend), ``training`` (the loop), ``score_rule`` and ``smoothing`` (errors -> one
score per timestamp), ``thresholds`` (one class per strategy), ``checks`` (persistence baseline,
copy check), ``scaling``, ``scoring`` and ``streaming`` (batched inference over window views),
``device`` (the one place that picks the torch device), ``registry`` (versions under models/).
"""

from tsad import lazy_exports

__all__ = ["Detector", "ModelVersion", "ScoreRule", "Scores", "Threshold", "load_detector",
           "make_threshold", "publish", "resolve_device", "select_version", "version_at"]
__getattr__ = lazy_exports(__name__, {
    "Detector": "detector", "ModelVersion": "registry", "ScoreRule": "score_rule",
    "Scores": "scoring", "Threshold": "thresholds", "load_detector": "registry",
    "make_threshold": "thresholds", "publish": "registry", "resolve_device": "device",
    "select_version": "registry", "version_at": "registry",
})
