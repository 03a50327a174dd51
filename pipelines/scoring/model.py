"""The win-probability model: feature encoding, a regularized logistic regression, metrics and explanations.

A snapshot becomes one row of numbers: four numeric features (log of days or counts,
and the owner's smoothed win rate) and one 0/1 column per level of the categorical
features (stage, amount band, product, account sector). Each column is standardized
with the training mean and standard deviation, and scikit-learn's LogisticRegression
(L2 penalty, C = 1) fits one coefficient per column.

Because the model is linear in log-odds, a deal's score splits exactly into the
model's log-odds at the average training snapshot plus one contribution per feature:
coefficient × (value − mean) ÷ scale, summed over the feature's columns. Those
contributions, with their sign, are the "factors" shown beside a score.

Everything scoring needs is the JSON of `ModelParameters.as_json()`; nothing is pickled.
"""

import bisect
import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from pipelines.scoring.features import Snapshot

# Smoothing of the owner's win rate: the owner's record is blended with the overall rate
# as if the owner had this many more closed deals at that rate.
OWNER_PRIOR_DEALS = 10
# A category level (product, sector, stage) needs this many training snapshots to get
# its own column; rarer levels share the column "other".
MIN_LEVEL_ROWS = 10
CALIBRATION_BANDS = 10
REGULARIZATION_C = 1.0
TOP_FACTORS = 3

NUMERIC_FEATURES = ("age_days", "stage_days", "activity_count", "owner_win_rate")
CATEGORICAL_FEATURES = ("stage", "amount_band", "product", "sector")
OTHER_LEVEL = "other"
NONE_LEVEL = "none"


@dataclass(frozen=True)
class Column:
    factor: str
    level: str | None
    mean: float
    scale: float
    coefficient: float = 0.0


@dataclass
class ModelParameters:
    """The fitted encoder and model; JSON-serialisable through `as_json`."""

    columns: list[Column]
    intercept: float
    # Raw ranges of the numeric features in training; scoring clips to them.
    ranges: dict[str, tuple[float, float]]
    levels: dict[str, list[str]]
    amount_edges: list[Decimal]
    prior_win_rate: float

    def as_json(self) -> dict:
        return {
            "columns": [
                {"factor": c.factor, "level": c.level, "mean": c.mean, "scale": c.scale, "coefficient": c.coefficient}
                for c in self.columns
            ],
            "intercept": self.intercept,
            "ranges": {name: list(bounds) for name, bounds in self.ranges.items()},
            "levels": self.levels,
            "amount_edges": [str(edge) for edge in self.amount_edges],
            "prior_win_rate": self.prior_win_rate,
        }

    @classmethod
    def from_json(cls, data: dict) -> "ModelParameters":
        return cls(
            columns=[Column(**column) for column in data["columns"]],
            intercept=data["intercept"],
            ranges={name: tuple(bounds) for name, bounds in data["ranges"].items()},
            levels=data["levels"],
            amount_edges=[Decimal(edge) for edge in data["amount_edges"]],
            prior_win_rate=data["prior_win_rate"],
        )


@dataclass(frozen=True)
class Factor:
    """One feature's contribution to a score, in log-odds; positive raises the probability."""

    factor: str
    value: object
    effect: float

    def as_json(self) -> dict:
        return {"factor": self.factor, "value": self.value, "effect": round(self.effect, 4)}


@dataclass(frozen=True)
class CalibrationBand:
    lower: float
    upper: float
    count: int
    predicted_mean: float | None
    observed_share: float | None

    def as_json(self) -> dict:
        return {
            "lower": self.lower,
            "upper": self.upper,
            "count": self.count,
            "predicted_mean": self.predicted_mean,
            "observed_share": self.observed_share,
        }


# --- encoding --------------------------------------------------------------------------------


def amount_band_edges(amounts: list[Decimal]) -> list[Decimal]:
    """Return the distinct quartile boundaries (25th, 50th, 75th percentile) of the known amounts."""
    known = sorted(amount for amount in amounts if amount is not None)
    if not known:
        return []
    edges = []
    for share in (1, 2, 3):
        edge = known[min(len(known) - 1, len(known) * share // 4)]
        if edge not in edges and edge != known[0]:
            edges.append(edge)
    return edges


def amount_band(amount: Decimal | None, edges: list[Decimal]) -> str:
    """Return "none" or the band number as text: "0" below the first edge, "1" from it up to the next, …"""
    if amount is None:
        return NONE_LEVEL
    return str(bisect.bisect_right(edges, amount))


def raw_features(snapshot: Snapshot, *, edges: list[Decimal], prior_win_rate: float) -> dict:
    """Return the snapshot's feature values before clipping, transformation and one-hot encoding."""
    return {
        "age_days": snapshot.age_days,
        "stage_days": snapshot.stage_days,
        "activity_count": snapshot.activity_count,
        "owner_win_rate": (snapshot.owner_won + OWNER_PRIOR_DEALS * prior_win_rate)
        / (snapshot.owner_closed + OWNER_PRIOR_DEALS),
        "stage": snapshot.stage_key or NONE_LEVEL,
        "amount_band": amount_band(snapshot.amount, edges),
        "product": snapshot.product_key or NONE_LEVEL,
        "sector": snapshot.sector or NONE_LEVEL,
    }


def _transform(name: str, value: float) -> float:
    # Days and counts are skewed: the first weeks matter more than the difference between 300 and 330 days.
    return value if name == "owner_win_rate" else math.log1p(value)


def _level_of(value: str, known: list[str]) -> str:
    return value if value in known else OTHER_LEVEL


def encoder_fit(snapshots: list[Snapshot]) -> ModelParameters:
    """Choose the columns, levels, ranges and amount edges from training snapshots; coefficients stay 0."""
    outcomes = [snapshot.outcome for snapshot in snapshots]
    prior_win_rate = sum(outcomes) / len(outcomes)
    deal_amounts = {snapshot.deal_id: snapshot.amount for snapshot in snapshots}
    edges = amount_band_edges(list(deal_amounts.values()))
    raws = [raw_features(snapshot, edges=edges, prior_win_rate=prior_win_rate) for snapshot in snapshots]

    levels = {}
    for name in CATEGORICAL_FEATURES:
        counts: dict[str, int] = {}
        for raw in raws:
            counts[raw[name]] = counts.get(raw[name], 0) + 1
        levels[name] = sorted(level for level, count in counts.items() if count >= MIN_LEVEL_ROWS)
    ranges = {name: (min(raw[name] for raw in raws), max(raw[name] for raw in raws)) for name in NUMERIC_FEATURES}
    parameters = ModelParameters(
        columns=[], intercept=0.0, ranges=ranges, levels=levels, amount_edges=edges, prior_win_rate=prior_win_rate
    )

    candidates = [(name, None) for name in NUMERIC_FEATURES]
    for name in CATEGORICAL_FEATURES:
        candidates += [(name, level) for level in [*levels[name], OTHER_LEVEL]]
    matrix = _unscaled_matrix(raws, parameters, candidates)
    means, scales = matrix.mean(axis=0), matrix.std(axis=0)
    # A column without variation (no activities at all, a single stage) cannot be learned from.
    parameters.columns = [
        Column(factor=name, level=level, mean=float(means[index]), scale=float(scales[index]))
        for index, (name, level) in enumerate(candidates)
        if scales[index] > 1e-9
    ]
    return parameters


def _unscaled_matrix(raws: list[dict], parameters: ModelParameters, columns: list[tuple[str, str | None]]) -> np.ndarray:
    matrix = np.zeros((len(raws), len(columns)))
    for row, raw in enumerate(raws):
        for index, (name, level) in enumerate(columns):
            if level is None:
                low, high = parameters.ranges[name]
                matrix[row, index] = _transform(name, min(max(raw[name], low), high))
            else:
                matrix[row, index] = float(_level_of(raw[name], parameters.levels[name]) == level)
    return matrix


def design_matrix(snapshots: list[Snapshot], parameters: ModelParameters) -> np.ndarray:
    """Return the standardized feature matrix of `snapshots`, one column per `parameters.columns`."""
    raws = [raw_features(s, edges=parameters.amount_edges, prior_win_rate=parameters.prior_win_rate) for s in snapshots]
    columns = [(column.factor, column.level) for column in parameters.columns]
    matrix = _unscaled_matrix(raws, parameters, columns)
    if not columns:
        return matrix
    means = np.array([column.mean for column in parameters.columns])
    scales = np.array([column.scale for column in parameters.columns])
    return (matrix - means) / scales


# --- fitting and scoring ---------------------------------------------------------------------


def model_fit(snapshots: list[Snapshot]) -> ModelParameters:
    """Fit encoder and logistic regression on snapshots of closed deals; both outcomes must occur."""
    parameters = encoder_fit(snapshots)
    outcomes = np.array([snapshot.outcome for snapshot in snapshots])
    matrix = design_matrix(snapshots, parameters)
    if not parameters.columns:
        # No feature varies: the best estimate is the overall win share.
        parameters.intercept = math.log(parameters.prior_win_rate / (1 - parameters.prior_win_rate))
        return parameters

    regression = LogisticRegression(C=REGULARIZATION_C, max_iter=2000)
    regression.fit(matrix, outcomes)
    parameters.intercept = float(regression.intercept_[0])
    parameters.columns = [
        Column(factor=c.factor, level=c.level, mean=c.mean, scale=c.scale, coefficient=float(coefficient))
        for c, coefficient in zip(parameters.columns, regression.coef_[0], strict=True)
    ]
    return parameters


def probabilities(snapshots: list[Snapshot], parameters: ModelParameters) -> np.ndarray:
    """Return the win probability of every snapshot, in order."""
    if not snapshots:
        return np.zeros(0)
    matrix = design_matrix(snapshots, parameters)
    coefficients = np.array([column.coefficient for column in parameters.columns])
    log_odds = parameters.intercept + (matrix @ coefficients if parameters.columns else 0.0)
    return 1.0 / (1.0 + np.exp(-log_odds))


def factors_explain(snapshots: list[Snapshot], parameters: ModelParameters, *, limit: int = TOP_FACTORS) -> list[list[Factor]]:
    """Return, per snapshot, the `limit` features with the largest contribution to its score, largest first.

    Features that do not move the score (contribution 0, e.g. an unlearnable column) are left out.
    """
    if not snapshots or not parameters.columns:
        return [[] for _snapshot in snapshots]
    coefficients = np.array([column.coefficient for column in parameters.columns])
    contributions = design_matrix(snapshots, parameters) * coefficients
    names = sorted({column.factor for column in parameters.columns})
    grouping = np.array([[float(column.factor == name) for name in names] for column in parameters.columns])
    effects = contributions @ grouping

    result = []
    for snapshot, row in zip(snapshots, effects, strict=True):
        ranked = sorted(
            ((name, float(effect)) for name, effect in zip(names, row, strict=True) if abs(effect) > 1e-6),
            key=lambda item: (-abs(item[1]), item[0]),
        )
        result.append(
            [Factor(factor=name, value=factor_value(snapshot, name, parameters), effect=effect) for name, effect in ranked[:limit]]
        )
    return result


def factor_value(snapshot: Snapshot, name: str, parameters: ModelParameters):
    """Return what the reader needs to understand a factor, as JSON-ready data."""
    if name in ("age_days", "stage_days", "activity_count"):
        return getattr(snapshot, name)
    if name == "owner_win_rate":
        return {"won": snapshot.owner_won, "closed": snapshot.owner_closed}
    if name == "stage":
        return snapshot.stage_name
    if name == "product":
        return snapshot.product_name or None
    if name == "sector":
        return snapshot.sector or None
    band = amount_band(snapshot.amount, parameters.amount_edges)
    if band == NONE_LEVEL:
        return None
    position = int(band)
    edges = parameters.amount_edges
    return {
        "lower": str(edges[position - 1]) if position > 0 else None,
        "upper": str(edges[position]) if position < len(edges) else None,
    }


# --- metrics ---------------------------------------------------------------------------------


def brier_score(predicted: list[float], outcomes: list[int]) -> float:
    """Return the mean squared difference between probability and outcome (0 perfect, 0.25 a coin)."""
    return float(np.mean((np.asarray(predicted, dtype=float) - np.asarray(outcomes, dtype=float)) ** 2))


def auc_score(predicted: list[float], outcomes: list[int]) -> float | None:
    """Return the ROC AUC, or None when only one outcome occurs (it is undefined then)."""
    if len(set(outcomes)) < 2:
        return None
    return float(roc_auc_score(outcomes, predicted))


def calibration_bands(predicted: list[float], outcomes: list[int], *, bands: int = CALIBRATION_BANDS) -> list[CalibrationBand]:
    """Group predictions into `bands` equal probability bands [0, 0.1), …, [0.9, 1.0] and compare.

    Each band gives its count, the mean predicted probability and the observed share of
    wins. An empty band has count 0 and None for both shares.
    """
    members: list[list[tuple[float, int]]] = [[] for _band in range(bands)]
    for probability, outcome in zip(predicted, outcomes, strict=True):
        # The small tolerance keeps 0.3 in the band [0.3, 0.4) despite 0.3 × 10 = 2.9999999999999996.
        index = min(bands - 1, math.floor(probability * bands + 1e-9))
        members[index].append((probability, outcome))
    result = []
    for index, rows in enumerate(members):
        count = len(rows)
        result.append(
            CalibrationBand(
                lower=index / bands,
                upper=(index + 1) / bands,
                count=count,
                predicted_mean=sum(p for p, _o in rows) / count if count else None,
                observed_share=sum(o for _p, o in rows) / count if count else None,
            )
        )
    return result
