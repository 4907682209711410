"""A model at chance level: the maps of a network that has learned nothing explain nothing, so every
command that shows a model's maps says so when its score is near chance (1/C for C classes).

>>> chance_warning("test macro-F1 of the CNN", 0.10, 10) is not None
True
>>> chance_warning("test macro-F1 of the CNN", 0.96, 10) is None
True
>>> chance_warning("accuracy", 0.75, 2) is None  # a binary model at 0.75 has learned something
True
"""

from __future__ import annotations

__all__ = ["CHANCE_MARGIN", "chance_warning"]

#: a score within this fraction of the way from chance (1/C) to perfect (1) counts as chance level
CHANCE_MARGIN = 0.1


def chance_warning(what: str, score: float, n_classes: int) -> str | None:
    """A one-line warning when ``score`` (an accuracy or macro-F1 in [0, 1]) is at most
    1/C + :data:`CHANCE_MARGIN` · (1 − 1/C), C = ``n_classes``; None otherwise.

    Args:
        what: the score's name, as the warning prints it.
        score: the measured score.
        n_classes: the number of classes C.
    Returns:
        the warning, or None.
    """
    chance = 1.0 / n_classes
    if score > chance + CHANCE_MARGIN * (1.0 - chance):
        return None
    return (
        f"warning: {what} is {score:.3f}, at chance level (1/{n_classes} = {chance:.3f}): the model has not "
        "learned the task, so its maps show nothing about it (train longer with --epochs, or check the data)"
    )
