"""The training task's ``executor_config``, from ``$TSAD_TRAIN_EXECUTOR_CONFIG`` (read at parse time).

With the KubernetesExecutor every task runs in a pod of its own; training asks for a GPU with a
``pod_override`` merged onto the worker pod (docs/deployment.md, *Kubernetes*). The variable
holds it as JSON in the Kubernetes API's own field names (the text of a pod manifest, so it can
live in the Helm values):

    {"pod_override": {"spec": {"containers": [{"name": "base", "resources": {"limits":
        {"nvidia.com/gpu": "1"}}}]}}}

Unset (the default), the DAG file imports nothing from Kubernetes and the task has no
``executor_config``. Set, the ``kubernetes`` client (installed with
``apache-airflow-providers-cncf-kubernetes``, which the KubernetesExecutor needs anyway) turns
it into the ``V1Pod`` the executor expects; a bad value fails the DAG's import with a message
naming the variable, rather than training silently without a GPU.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from tsad.errors import ConfigError

VARIABLE = "TSAD_TRAIN_EXECUTOR_CONFIG"


def train_executor_config(env: Mapping[str, str] = os.environ) -> dict[str, Any] | None:
    """``executor_config`` for ensure_model, or None when ``$TSAD_TRAIN_EXECUTOR_CONFIG`` is unset."""
    raw = env.get(VARIABLE, "").strip()
    if not raw:
        return None
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{VARIABLE} is not valid JSON ({exc}); see docs/deployment.md, "
                          "Kubernetes") from None
    if not isinstance(spec, dict) or set(spec) != {"pod_override"} or not isinstance(
            spec["pod_override"], dict):
        raise ConfigError(f"{VARIABLE} must be a JSON object with one key, 'pod_override' (a "
                          f"pod manifest), got {raw[:80]!r}")
    return {"pod_override": _pod(spec["pod_override"])}


def _pod(manifest: dict[str, Any]) -> Any:
    """The ``kubernetes.client.V1Pod`` of a pod manifest in the API's field names."""
    try:
        from kubernetes.client import ApiClient, Configuration
        from kubernetes.client.models import V1Pod
    except ImportError:
        raise ConfigError(f"{VARIABLE} is set, but the kubernetes client is not installed; "
                          "install apache-airflow-providers-cncf-kubernetes (the "
                          "KubernetesExecutor's package) on the scheduler, dag-processor and "
                          "workers") from None
    # kubernetes-client has no public dict -> model call (kubernetes-client/python#977); this is
    # the one Airflow and the cncf provider use. A fresh Configuration keeps the in-cluster
    # global one (which cannot be pickled) out of the pod.
    client = ApiClient(configuration=Configuration())
    return client._ApiClient__deserialize_model(manifest, V1Pod)
