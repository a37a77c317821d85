"""Request types the model has never seen, routed through the known type whose name they resemble most.

Cities rename types between years (NYC's "HEATING" became "HEAT/HOT WATER", "Dirty Conditions" became
"Dirty Condition"). A categorical code knows nothing of a new name, so the pipeline gives an unseen type the
usual department of its nearest known type: the Jaccard similarity of their word-stem sets (each word cut
to its first four letters, a crude stemmer that joins "heat"/"heating" and "door"/"doors"), above a
threshold, within the same city. The result is only the `type_department` feature; the type's own code
stays missing and the warning that names it stays.
"""

from __future__ import annotations

from collections.abc import Mapping

from features.text import tokens

STEM_LETTERS = 4
MIN_SIMILARITY = 0.25
_CACHE_LIMIT = 10_000  # unseen names come from clients: bound what is remembered


def stems(name: str) -> frozenset[str]:
    """The word stems of a type name (lower-cased words of 2+ characters, cut to STEM_LETTERS)."""
    return frozenset(token[:STEM_LETTERS] for token in tokens(name))


class NearestType:
    """Maps an unseen (city, type) to the department of the most similar known type, or None."""

    def __init__(self, type_department: Mapping[str, Mapping[str, str]], min_similarity: float = MIN_SIMILARITY):
        self.min_similarity = min_similarity
        # Sorted by name so ties go to the alphabetically first type, whatever the map's order.
        self._known = {
            city: [(stems(name), name, department) for name, department in sorted(types.items())]
            for city, types in type_department.items()
        }
        self._cache: dict[tuple[str, str], str | None] = {}

    def department(self, city: str, request_type: str) -> str | None:
        key = (city, request_type)
        if key in self._cache:
            return self._cache[key]
        wanted = stems(request_type)
        best, best_score = None, self.min_similarity
        if wanted:
            for known, _, department in self._known.get(city, []):
                score = len(wanted & known) / len(wanted | known)
                if score > best_score or (best is None and score >= best_score):
                    best, best_score = department, score
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[key] = best
        return best
