"""MLflow registry access shared by the CLI, training and the service: tracking set-up, aliases, loading.

It lives in `serving` (the lower layer) because the service loads champions too and must not import the
trainer. Registered models: `eta311-time-to-close` and `eta311-department`; aliases `champion`,
`challenger` and `previous` (for rollback) instead of the deprecated stages.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # lightgbm (via models.bundle) costs seconds to import; only load_model needs it
    from models.bundle import ModelBundle

log = logging.getLogger(__name__)

TIME_TO_CLOSE = "eta311-time-to-close"
DEPARTMENT = "eta311-department"
REGISTERED_MODELS = (TIME_TO_CLOSE, DEPARTMENT)
EXPERIMENT = "eta311"
CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"


# The user-info part of any URL in a text: `scheme://user:password@host` -> `scheme://***@host`.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]+@")


def redact(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by `***` (tracking URIs such as
    `http://user:password@host` reach logs, /readyz and error messages; their secrets must not)."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def local_store_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///PATH` tracking URI (None for any other store). MLflow creates a
    missing file on first use, so callers that must not create one check it first."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///") :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


class RegistryError(RuntimeError):
    """The registry cannot give what was asked (no such alias, unreachable store)."""


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    alias: str
    run_id: str
    bundle: ModelBundle
    path: Path | None = None  # the downloaded model folder (the service imports it into its BentoML store)


def configure_tracking(uri: str, artifacts_dir: Path) -> str:
    """Point MLflow at the tracking store and make sure the eta311 experiment exists; returns its id.

    With a sqlite store, artifacts go under `artifacts_dir` (ETA311_HOME/mlartifacts); with a server
    (MLFLOW_TRACKING_URI=http://...), the server decides where artifacts live.
    """
    import mlflow

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is None:
        location = artifacts_dir.as_uri() if uri.startswith("sqlite:") else None
        experiment_id = mlflow.create_experiment(EXPERIMENT, artifact_location=location)
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def client():
    from mlflow import MlflowClient

    return MlflowClient()


def version_for_alias(name: str, alias: str) -> str | None:
    """The version number holding `alias`, or None when the alias (or the model) does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def set_alias(name: str, alias: str, version: str) -> None:
    client().set_registered_model_alias(name, alias, str(version))


def load_model(name: str, alias: str, destination: Path | None = None) -> LoadedModel:
    """Download the bundle behind `name@alias` and load it (native boosters, JSON pipeline)."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from models.bundle import ModelBundle

    try:
        version = client().get_model_version_by_alias(name, alias)
    except MlflowException as error:
        raise RegistryError(f"{name} has no version with alias {alias!r}: train and promote first") from error
    kwargs = {"dst_path": str(destination)} if destination else {}
    if destination:
        destination.mkdir(parents=True, exist_ok=True)
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version.version}", **kwargs)
    bundle = ModelBundle.load(Path(local))
    return LoadedModel(
        name=name, version=str(version.version), alias=alias, run_id=version.run_id, bundle=bundle, path=Path(local)
    )
