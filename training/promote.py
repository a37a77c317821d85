"""`eta311 promote` and `eta311 rollback`: move the `champion` alias only when the challenger is better.

The rule lives in each model's spec (`promotion` in models/specs/*.yaml). Both versions are scored on the same
temporal test: the challenger's own test period (its run records the data file and the test start), with
every earlier row of that file as workload history. The old champion keeps alias `previous` for rollback.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.schema import read_records
from models.registry import (
    CHALLENGER,
    CHAMPION,
    DEPARTMENT,
    PREVIOUS,
    REGISTERED_MODELS,
    TIME_TO_CLOSE,
    load_model,
    set_alias,
    version_for_alias,
)
from training.evaluate import evaluate_department_bundle, evaluate_time_bundle
from training.reference import References

log = logging.getLogger(__name__)


@dataclass
class Decision:
    model: str
    challenger: str | None
    champion_before: str | None
    champion_after: str | None
    promoted: bool
    reason: str
    challenger_metric: float | None = None
    champion_metric: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _test_data(run_id: str) -> tuple[pd.DataFrame, np.ndarray] | None:
    """The challenger run's data file and test mask, or None when the file is no longer there."""
    import mlflow

    params = mlflow.get_run(run_id).data.params
    path = Path(params.get("data_path", ""))
    if not path.is_file():
        return None
    records = read_records(path)
    from training.train import canonical_order

    records = canonical_order(records)
    test_start = pd.Timestamp(params["split_test_start"])
    return records, (records["created_at"] >= test_start).to_numpy()


def _score(name: str, model: Any, records: pd.DataFrame, mask: np.ndarray) -> dict[str, Any]:
    """A registered version's metrics on the test rows, beside the reference trained with it (if any)."""
    if name == TIME_TO_CLOSE:
        reference = References.load(time_folder=model.path).time_to_close
        return evaluate_time_bundle(model.bundle, records, mask, reference=reference)[0]
    reference = References.load(department_folder=model.path).department
    return evaluate_department_bundle(model.bundle, records, mask, reference=reference)


def reference_rule(rule: dict[str, Any], scores: dict[str, Any]) -> tuple[bool, str]:
    """Whether a version holds its own against the reference on its test (the rule's `reference` block:
    each listed metric at least as good as `baseline_reference_<metric>`, within `tolerance`, relative).
    A version trained before references existed, or a rule without the block, passes."""
    block = rule.get("reference")
    if not block:
        return True, "no reference rule"
    sign = 1.0 if block.get("direction", "minimize") == "minimize" else -1.0
    tolerance = float(block.get("tolerance", 0.0))
    losses = []
    for metric in block.get("metrics", []):
        ours, theirs = scores.get(metric), scores.get(f"baseline_reference_{metric}")
        if ours is None or theirs is None:
            continue
        if sign * (ours - theirs) > tolerance * abs(theirs):
            losses.append(f"{metric} {ours:.4f} vs reference {theirs:.4f}")
    if losses:
        return False, "loses to the reference on its temporal test: " + "; ".join(losses) + " (use --force)"
    return True, "holds against the reference"


def apply_rule(rule: dict[str, Any], challenger: dict[str, Any], champion: dict[str, Any]) -> tuple[bool, str]:
    """Whether the challenger's metrics beat the champion's under `rule`, and why (one sentence)."""
    metric = rule["metric"]
    new, old = challenger.get(metric), champion.get(metric)
    if new is None or old is None:
        return False, f"{metric} is missing from the scores"
    sign = 1.0 if rule.get("direction", "minimize") == "minimize" else -1.0
    needed = float(rule.get("min_improvement", 0.0))
    improvement = sign * (old - new) / abs(old) if old else sign * (old - new)
    if improvement <= needed:
        return False, f"{metric} {new:.4f} vs champion {old:.4f}: improvement {improvement:+.2%} not above {needed:.2%}"
    band = rule.get("coverage_band")
    coverage = challenger.get("coverage_p10_p90")
    if band and coverage is not None and not band[0] <= coverage <= band[1]:
        return False, f"P10-P90 coverage {coverage:.3f} outside {band[0]}-{band[1]}"
    drop = rule.get("max_accuracy_drop")
    if drop is not None and challenger.get("accuracy", 0) < champion.get("accuracy", 0) - float(drop):
        return False, f"accuracy {challenger['accuracy']:.4f} drops more than {drop} below {champion['accuracy']:.4f}"
    return True, f"{metric} {new:.4f} beats champion {old:.4f} ({improvement:+.2%})"


def promote(force: bool = False) -> list[Decision]:
    """Decide for each registered model; move aliases where the decision is to promote."""
    decisions = []
    for name in REGISTERED_MODELS:
        challenger = version_for_alias(name, CHALLENGER)
        champion = version_for_alias(name, CHAMPION)
        if challenger is None:
            decisions.append(Decision(name, None, champion, champion, False, "no challenger: run `eta311 train`"))
            continue
        if challenger == champion:
            decisions.append(Decision(name, challenger, champion, champion, False, "challenger is already champion"))
            continue
        if force:
            decisions.append(_move(name, challenger, champion, "forced (--force): rule not applied"))
            continue
        new = load_model(name, CHALLENGER)
        data = _test_data(new.run_id)
        if champion is None:
            decisions.append(_first(name, new, challenger, data))
            continue
        if data is None:
            decisions.append(
                Decision(
                    name,
                    challenger,
                    champion,
                    champion,
                    False,
                    "the challenger's data file is gone: cannot score both on the same test (use --force)",
                )
            )
            continue
        records, mask = data
        old = load_model(name, CHAMPION)
        new_scores = _score(name, new, records, mask)
        old_scores = _score(name, old, records, mask)
        rule = new.bundle.spec["promotion"]
        # Both rules are checked and every failing one is named, so a refusal says all that is wrong.
        checks = [apply_rule(rule, new_scores, old_scores), reference_rule(rule, new_scores)]
        ok = all(good for good, _ in checks)
        reason = checks[0][1] if ok else "; ".join(why for good, why in checks if not good)
        metric = rule["metric"]
        if ok:
            decision = _move(name, challenger, champion, reason)
        else:
            decision = Decision(name, challenger, champion, champion, False, reason)
        decision.challenger_metric = new_scores.get(metric)
        decision.champion_metric = old_scores.get(metric)
        decisions.append(decision)
    return decisions


def _first(name: str, new: Any, challenger: str, data: tuple[pd.DataFrame, np.ndarray] | None) -> Decision:
    """The first champion: any trained version, unless it loses to its own reference."""
    if data is not None:
        ok, reason = reference_rule(new.bundle.spec["promotion"], _score(name, new, *data))
        if not ok:
            return Decision(name, challenger, None, None, False, reason)
    return _move(name, challenger, None, "no champion yet: the first trained version becomes it")


def _move(name: str, challenger: str, champion: str | None, reason: str) -> Decision:
    if champion is not None:
        set_alias(name, PREVIOUS, champion)
    set_alias(name, CHAMPION, challenger)
    log.info("%s: champion -> version %s (%s)", name, challenger, reason)
    return Decision(name, challenger, champion, challenger, True, reason)


def rollback() -> list[Decision]:
    """Restore `previous` as champion; the replaced champion becomes `previous` (a second rollback undoes)."""
    decisions = []
    for name in (TIME_TO_CLOSE, DEPARTMENT):
        previous = version_for_alias(name, PREVIOUS)
        champion = version_for_alias(name, CHAMPION)
        if previous is None:
            decisions.append(Decision(name, None, champion, champion, False, "no previous champion to restore"))
            continue
        set_alias(name, CHAMPION, previous)
        if champion is not None:
            set_alias(name, PREVIOUS, champion)
        decisions.append(Decision(name, None, champion, previous, True, f"restored version {previous}"))
    return decisions
