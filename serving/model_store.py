"""The BentoML model store under ETA311_HOME: champions imported from the MLflow registry, and the snapshot.

`eta311 serve` imports the two `champion` versions and the latest workload snapshot as BentoML models
(`eta311-time-to-close`, `eta311-department`, `eta311-workload-snapshot`); the service declares them with
`BentoModel(...:latest)` at class scope, so `bentoml build` packages exactly what `eta311 serve` serves. An
import is skipped when the latest BentoML version already holds the same registry version (same run), so
restarting the server does not grow the store; a rollback imports the older version again as the latest.

Every import records the sha256 of each file it stores (the model's `sha256` metadata); the workers check
the files against it before any of them reaches LightGBM's parser, which can crash the process on a damaged
file (a truncated booster made the workers restart in a loop). A model imported without digests (an older
eta311) is imported again on the next start that reaches the registry.

BENTOML_HOME must point at the store before `bentoml` is first imported (the CLI sets it).
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from models.files import LATEST_SNAPSHOT_FILE, SNAPSHOT_FILE, bundle_folder
from models.registry import CHAMPION, DEPARTMENT, TIME_TO_CLOSE, LoadedModel

log = logging.getLogger(__name__)

BENTO_TIME_TO_CLOSE = "eta311-time-to-close"
BENTO_DEPARTMENT = "eta311-department"
BENTO_SNAPSHOT = "eta311-workload-snapshot"
BENTO_NAMES = {TIME_TO_CLOSE: BENTO_TIME_TO_CLOSE, DEPARTMENT: BENTO_DEPARTMENT}
DIGESTS = "sha256"  # metadata key: {file path relative to the model folder: sha256 hex digest}


@dataclass(frozen=True)
class Imported:
    """What the BentoML store serves now: model tags and their registry versions."""

    time_to_close_tag: str
    department_tag: str
    snapshot_tag: str
    versions: dict[str, str]


def _latest(name: str):
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return bentoml.models.get(f"{name}:latest")
    except NotFound:
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(folder: Path) -> dict[str, str]:
    """The sha256 of every file under `folder`, by POSIX path relative to it."""
    return {p.relative_to(folder).as_posix(): _sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def digest_problems(folder: Path, recorded: dict[str, str] | None) -> list[tuple[str, str]]:
    """(file, reason) for each file of a stored model that is missing or differs from the digest recorded at
    import; every file when none were recorded. Empty when all match."""
    if not recorded:
        return [("*", "no file digests were recorded at import (an older eta311): import it again")]
    problems = []
    for name, expected in sorted(recorded.items()):
        path = folder / name
        if not path.is_file():
            problems.append((name, "missing"))
            continue
        actual = _sha256(path)
        if actual != expected:
            size = path.stat().st_size
            problems.append((name, f"sha256 {actual[:16]} ({size} bytes) is not {expected[:16]} recorded at import"))
    return problems


def stored_problems(model) -> list[str]:
    """'TAG/FILE: reason' for each damaged file of a stored BentoML model (empty when it is intact). Names
    the file by its place in the store, not its absolute path (this goes to the unauthenticated /readyz)."""
    recorded = model.info.metadata.get(DIGESTS)
    return [f"{model.tag}/{name}: {reason}" for name, reason in digest_problems(Path(model.path), recorded)]


def _has_digests(model) -> bool:
    return bool(model.info.metadata.get(DIGESTS))


def import_model(model: LoadedModel) -> str:
    """Copy a champion's bundle into the BentoML store (unless the latest version is the same); its tag."""
    import bentoml

    name = BENTO_NAMES[model.name]
    labels = {
        "registered_model": model.name,
        "registry_version": str(model.version),
        "run_id": model.run_id,
        "alias": CHAMPION,
    }
    latest = _latest(name)
    if (
        latest is not None
        and latest.info.labels.get("run_id") == model.run_id
        and (latest.info.labels.get("registry_version") == str(model.version))
        and _has_digests(latest)
    ):
        log.info("%s version %s already imported as %s", model.name, model.version, latest.tag)
        return str(latest.tag)
    source = bundle_folder(model.path)
    metadata = {"kind": model.bundle.kind, DIGESTS: file_digests(source)}
    with bentoml.models.create(name, labels=labels, metadata=metadata) as stored:
        shutil.copytree(source, stored.path, dirs_exist_ok=True)
    log.info("imported %s version %s into the BentoML store as %s", model.name, model.version, stored.tag)
    return str(stored.tag)


def import_snapshot(path: Path) -> str:
    """Store a workload snapshot Parquet file as a BentoML model (skipped when the content is unchanged)."""
    import bentoml

    full = _sha256(path)
    digest = full[:16]
    latest = _latest(BENTO_SNAPSHOT)
    if latest is not None and latest.info.labels.get("sha256") == digest and _has_digests(latest):
        return str(latest.tag)
    labels, metadata = {"sha256": digest, "source": path.name}, {DIGESTS: {SNAPSHOT_FILE: full}}
    with bentoml.models.create(BENTO_SNAPSHOT, labels=labels, metadata=metadata) as stored:
        shutil.copyfile(path, Path(stored.path) / SNAPSHOT_FILE)
    log.info("imported workload snapshot %s as %s", path, stored.tag)
    return str(stored.tag)


def _already_imported(name: str) -> str | None:
    """The BentoML tag holding `name@champion` when the latest import is that very version (same run), else
    None. Asks the registry only for the alias, so a restart does not download and parse the champions."""
    from mlflow.exceptions import MlflowException

    from models.registry import RegistryError, client

    try:
        version = client().get_model_version_by_alias(name, CHAMPION)
    except MlflowException as error:
        raise RegistryError(f"{name} has no version with alias {CHAMPION!r}: train and promote first") from error
    latest = _latest(BENTO_NAMES[name])
    if (
        latest is not None
        and latest.info.labels.get("registry_version") == str(version.version)
        and latest.info.labels.get("run_id") == version.run_id
        and _has_digests(latest)
    ):
        log.info("%s version %s already imported as %s", name, version.version, latest.tag)
        return str(latest.tag)
    return None


def import_champions(snapshots_dir: Path, download_dir: Path) -> Imported:
    """Import both champions from the registry (tracking already configured; downloaded only when the store
    does not hold that version yet) and the snapshot.

    The snapshot is `snapshots_dir/latest.parquet` (written by `eta311 train` and `eta311 snapshot`), or,
    when there is none, the snapshot saved with the time-to-close bundle. Raises `RegistryError` when
    there is no champion; any other exception means the store could not be read.
    """
    import bentoml

    from models.registry import load_model

    tags, versions = [], {}
    for name in (TIME_TO_CLOSE, DEPARTMENT):
        tag = _already_imported(name)
        if tag is None:
            tag = import_model(load_model(name, CHAMPION, download_dir / name))
        tags.append(tag)
        versions[name] = bentoml.models.get(tag).info.labels.get("registry_version", "?")
    snapshot = snapshots_dir / LATEST_SNAPSHOT_FILE
    if not snapshot.is_file():
        bundled = list(Path(bentoml.models.get(tags[0]).path).rglob(SNAPSHOT_FILE))
        if not bundled:
            raise FileNotFoundError(f"no workload snapshot: run `eta311 snapshot DATA` (looked in {snapshot})")
        log.warning("no %s: serving the workload snapshot saved with the model", snapshot)
        snapshot = bundled[0]
    snapshot_tag = import_snapshot(snapshot)
    return Imported(tags[0], tags[1], snapshot_tag, versions)


def last_imported() -> Imported | None:
    """The latest imported models and snapshot, or None when the store lacks any of them."""
    latest = [_latest(name) for name in (BENTO_TIME_TO_CLOSE, BENTO_DEPARTMENT, BENTO_SNAPSHOT)]
    if any(model is None for model in latest):
        return None
    time_model, department_model, snapshot = latest
    return Imported(
        str(time_model.tag),
        str(department_model.tag),
        str(snapshot.tag),
        {
            TIME_TO_CLOSE: time_model.info.labels.get("registry_version", "?"),
            DEPARTMENT: department_model.info.labels.get("registry_version", "?"),
        },
    )
