"""`eta311 serve`: import the registry's champions into the BentoML store, then become the BentoML server.

Order matters: BENTOML_HOME is set before `bentoml` is imported (its model store is fixed at first use),
MLflow retries are capped so an unreachable tracking server is noticed in seconds rather than minutes, and
the process finally `exec`s `bentoml serve` (through `serving.control`), so signals (Ctrl-C, a
supervisor's SIGTERM) reach the server directly and no idle parent stays behind.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import Protocol

from models.compiled import COMPILED_DIR_ENV
from models.registry import CHAMPION, DEPARTMENT, TIME_TO_CLOSE, RegistryError, local_store_path, redact
from serving.model_store import Imported

log = logging.getLogger(__name__)

SERVICE_IMPORT = "serving.service:Eta311"
NO_CHAMPION = "no champion: run `eta311 train` then `eta311 promote`"


class ServeSettings(Protocol):
    """What serving needs of `eta311.settings.Settings` (typed structurally: serving never imports the shell)."""

    @property
    def home(self) -> Path: ...
    @property
    def bentoml_home(self) -> Path: ...
    @property
    def snapshots_dir(self) -> Path: ...
    @property
    def tracking_uri(self) -> str: ...
    @property
    def compiled_dir(self) -> Path: ...


class NoChampion(RuntimeError):
    """There is nothing to serve: no champion in the registry (or none imported while it is unreachable)."""


class StoreMissing(RuntimeError):
    """The local tracking database does not exist (MLflow would create an empty one)."""


def _reachable(uri: str) -> None:
    """Raise if the tracking store cannot be queried (a cheap call that needs no registered model).

    A `sqlite:///` store whose file is missing raises `StoreMissing` before MLflow is asked: MLflow would
    create an empty database, which looks reachable, has no champion, and stays behind."""
    from models.registry import client

    local = local_store_path(uri)
    if local is not None and not local.is_file():
        raise StoreMissing(f"{local.name} does not exist in {local.parent}")
    client().search_registered_models(max_results=1)


def _compile(folders: list[Path], settings: ServeSettings) -> bool:
    """Compile the bundles' boosters for this CPU unless cached (models.compiled). False when lleaves is
    unavailable or compiling failed: logged, never raised, since LightGBM predicts the same numbers."""
    from models.compiled import available, ensure_compiled

    if not available():
        log.warning("lleaves is not installed: predictions will use LightGBM (slower, same numbers)")
        return False
    try:
        summary = ensure_compiled(folders, settings.compiled_dir)
    except Exception:  # a compiler failure must not stop a promotion or the service
        log.warning("could not compile the boosters: predictions will use LightGBM", exc_info=True)
        return False
    log.info(
        "boosters compiled for this CPU: %d new, %d cached (%.1f s)", summary.compiled, summary.cached, summary.seconds
    )
    return True


def compile_imported(settings: ServeSettings, imported: Imported) -> bool:
    """Compile the models imported into the BentoML store (what the workers will load)."""
    import bentoml

    from models.files import bundle_folder

    tags = (imported.time_to_close_tag, imported.department_tag)
    return _compile([bundle_folder(bentoml.models.get(tag).path) for tag in tags], settings)


def compile_champions(settings: ServeSettings) -> bool:
    """Fill the compiled-booster cache for the registry's champions (after a promotion), so that the next
    `eta311 serve` starts in seconds. Tracking must be configured; False when there is nothing to compile."""
    from models.files import bundle_folder
    from models.registry import load_model

    with tempfile.TemporaryDirectory(prefix="eta311-compile-") as tmp:
        try:
            models = [load_model(name, CHAMPION, Path(tmp) / name) for name in (TIME_TO_CLOSE, DEPARTMENT)]
        except RegistryError:
            return False
        return _compile([bundle_folder(model.path) for model in models], settings)


def prepare(
    settings: ServeSettings, download_dir: Path, compile_models: bool = True
) -> tuple[dict[str, str], str | None]:
    """Import champions (or fall back to the last import), compile their boosters unless `compile_models` is
    False; returns (versions, note for /readyz or None)."""
    import mlflow

    from serving.model_store import import_champions, last_imported

    os.environ["BENTOML_HOME"] = str(settings.bentoml_home)
    settings.bentoml_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    uri = settings.tracking_uri
    shown = redact(uri)  # what logs and /readyz may say: no user:password
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        _reachable(uri)
    except Exception as error:  # any failure to talk to the store means: serve what we have
        last = last_imported()
        reason = redact(str(error).splitlines()[0][:300]) if str(error) else type(error).__name__
        state = "missing" if isinstance(error, StoreMissing) else "unreachable"
        if last is None:
            raise NoChampion(
                f"tracking store {shown} is {state} ({reason}) and no models were imported before; {NO_CHAMPION}"
            ) from error
        note = (
            f"tracking store {shown} {state} ({reason}); serving the last imported models "
            f"{last.time_to_close_tag} and {last.department_tag}"
        )
        log.warning("%s", note)
        if compile_models:
            compile_imported(settings, last)
        return last.versions, note
    try:
        imported = import_champions(settings.snapshots_dir, download_dir)
    except RegistryError as error:
        raise NoChampion(NO_CHAMPION) from error
    except FileNotFoundError as error:
        raise NoChampion(str(error)) from error
    log.info("serving %s", ", ".join(f"{name} version {v}" for name, v in imported.versions.items()))
    if compile_models:
        compile_imported(settings, imported)
    return imported.versions, None


def server_command(host: str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "serving.control",  # `bentoml serve` with the process manager on owner-only sockets
        "serve",
        SERVICE_IMPORT,
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(Path(__file__).resolve().parents[1]),
    ]


# The workers serve from the BentoML store and never talk to the registry: its credentials stay out of their
# environment (which the process manager can list).
_REGISTRY_SECRETS = frozenset(
    f"MLFLOW_{name}"
    for name in ("TRACKING_URI", "REGISTRY_URI", "TRACKING_USERNAME", "TRACKING_PASSWORD", "TRACKING_TOKEN")
)


def server_env(settings: ServeSettings, workers: int, note: str | None, compiled: bool = True) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _REGISTRY_SECRETS}
    if compiled:
        env[COMPILED_DIR_ENV] = str(settings.compiled_dir)  # the workers load compiled boosters from here
    else:
        env.pop(COMPILED_DIR_ENV, None)
    env["BENTOML_HOME"] = str(settings.bentoml_home)
    env["ETA311_HOME"] = str(settings.home)
    env["ETA311_SNAPSHOTS_DIR"] = str(settings.snapshots_dir)  # the dashboard's inputs (serving.service)
    env["BENTOML_DO_NOT_TRACK"] = "true"
    env.setdefault("OMP_NUM_THREADS", "1")  # LightGBM predicts on one thread per worker (see serving.service)
    env["BENTOML_CONFIG_OPTIONS"] = " ".join(
        part for part in (env.get("BENTOML_CONFIG_OPTIONS", ""), f"services.eta311.workers={workers}") if part
    )
    if note:
        env["ETA311_REGISTRY_NOTE"] = note
    else:
        env.pop("ETA311_REGISTRY_NOTE", None)
    return env


def prepare_and_exec(settings: ServeSettings, host: str, port: int, workers: int, compiled: bool = True) -> None:
    """Prepare the store, then replace this process with `bentoml serve` (does not return on success)."""
    with tempfile.TemporaryDirectory(prefix="eta311-serve-") as tmp:
        _, note = prepare(settings, Path(tmp), compile_models=compiled)
    command = server_command(host, port)
    log.info("starting the BentoML server on http://%s:%d with %d worker(s)", host, port, workers)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, server_env(settings, workers, note, compiled))
