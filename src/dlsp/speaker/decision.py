"""Accept, reject or name: which threshold applies, what it means, and the 1:N rule of `dlsp speaker identify`.

The threshold comes from, first to last: `--threshold` on the command line; the database's calibration
(`dlsp speaker calibrate`, measured on the user's own recordings); the model's (set on its validation
speakers). The model's depends on the person and the probe: a model with thresholds by enrolment size uses the
ones set on speaker models of the person's number of recordings (`dlsp.speaker.scoring.Scorer.for_enrolment`),
and of those the narrowband threshold when the model has one and the probe is narrowband (its content stops
below the rule's `below_hz`: telephone audio; `dlsp.speaker.scoring`), else the one threshold. The user's
threshold and the database's apply to every probe and person alike: they were chosen for the user's own audio.
The expected false-accept rate is read from the rate table of the same source (for `--threshold`, the
database's table if it has one, else the model's table for this person and probe).

Identification compares a probe with every one of N enrolled people, so an impostor has N chances to clear the
threshold: at a 1:1 false-accept rate p, about N * p of impostor probes would be named as someone. The 1:N rule
therefore raises each person's threshold by a margin: to the score where their table's false-accept rate is
p / N (never above the highest impostor score the table saw), so naming a wrong person is about as rare as a
false accept in verification. The best-scoring person is named when their score reaches their threshold plus
margin; otherwise the probe is "unknown". `--margin` sets the margin directly; without a table it is 0.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dlsp.errors import DlspError
from dlsp.speaker.database import Calibration
from dlsp.speaker.scoring import RateTable, Scorer, check_threshold


@dataclass(frozen=True)
class ThresholdChoice:
    """The threshold in force, where it came from, and the rate table that says what it means."""

    threshold: float
    source: str
    table: RateTable | None
    table_from_model: bool = True  # the rate table is the model's (else the database calibration's)
    enrolled: int | None = None  # recordings per speaker model in the trials of the table (None: not recorded)

    @property
    def expected_far(self) -> float | None:
        return None if self.table is None else self.table.far_at(self.threshold)


def choose_threshold(scorer: Scorer, calibration: Calibration | None, override: float | None,
                     db_path: str | os.PathLike[str] | None = None, narrowband: bool = False,
                     n_files: int | None = None) -> ThresholdChoice:
    """The threshold by precedence (module docstring) for a probe that is `narrowband` or not (by the model's
    rule: `scorer.is_narrowband`) against a person enrolled with `n_files` recordings (None: the model's one
    threshold). A calibration made for another scoring is refused."""
    if calibration is not None and calibration.score_id != scorer.score_id:
        raise DlspError(f"the database's threshold was calibrated for scoring {calibration.score_id}, but this "
                        f"model scores with {scorer.score_id}; run 'dlsp speaker calibrate' again or pass "
                        "--threshold", db_path)
    model = model_choice(scorer if n_files is None else scorer.for_enrolment(n_files), narrowband)
    own = calibration is None or calibration.table is None
    table, enrolled = (model.table, model.enrolled) if own else (calibration.table, calibration.enrolled_files)
    if override is not None:
        return ThresholdChoice(check_threshold(override, scorer), "--threshold", table, own, enrolled)
    if calibration is not None:
        return ThresholdChoice(calibration.threshold, f"database calibration on {calibration.data}", table, own,
                               enrolled)
    return model


def model_choice(scorer: Scorer, narrowband: bool) -> ThresholdChoice:
    """The scorer's own threshold for the probe: the narrowband one for a narrowband probe when it has one."""
    narrow = scorer.narrow
    if narrowband and narrow is not None:
        return ThresholdChoice(narrow.threshold, f"model validation, narrowband probe (content below "
                                                 f"{narrow.below_hz / 1000:g} kHz)", narrow.table,
                               enrolled=scorer.enrolled)
    return ThresholdChoice(scorer.threshold, "model validation", scorer.table, enrolled=scorer.enrolled)


def identify_margin(choice: ThresholdChoice, n_enrolled: int) -> float:
    """The 1:N margin (module docstring): the rise in score from the threshold's false-accept rate p to p / N."""
    if choice.table is None or n_enrolled <= 1:
        return 0.0
    p = choice.table.far_at(choice.threshold)
    return max(0.0, choice.table.threshold_at(p / n_enrolled) - choice.threshold)


@dataclass(frozen=True)
class Identification:
    """Everyone ranked by score (best first), the score each must reach to be named (their threshold plus
    margin) and that margin, in the same order; and who, if anyone, is named."""

    names: list[str]
    scores: np.ndarray
    required: np.ndarray
    margins: np.ndarray
    choices: list[ThresholdChoice]

    @property
    def identified(self) -> str | None:
        return self.names[0] if self.names and self.scores[0] >= self.required[0] else None

    def chance_impostor_named(self) -> float | None:
        """The expected share of impostor probes named as someone: the sum over the enrolled of each one's
        false-accept rate at the score they must reach (None when a table is missing)."""
        if any(choice.table is None for choice in self.choices):
            return None
        return min(1.0, sum(choice.table.far_at(float(need))
                            for choice, need in zip(self.choices, self.required, strict=True)))


def identify(names: list[str], scores: np.ndarray, choices: Sequence[ThresholdChoice], margin: float | None = None
             ) -> Identification:
    """Rank enrolled `names` by `scores` (ties by name) and apply the 1:N rule with each person's threshold
    choice (`choices`, one per name)."""
    if len(choices) != len(names):
        raise ValueError("identify needs one threshold choice per enrolled name")
    order = sorted(range(len(names)), key=lambda i: (-float(scores[i]), names[i]))
    ranked = [choices[i] for i in order]
    margins = np.array([identify_margin(c, len(names)) if margin is None else float(margin) for c in ranked])
    required = np.array([c.threshold for c in ranked]) + margins
    return Identification([names[i] for i in order], np.asarray(scores)[order], required, margins, ranked)
