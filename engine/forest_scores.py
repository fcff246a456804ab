"""A fitted Isolation Forest's ``score_samples``, from its trees as arrays, without scikit-learn.

``IsolationForest.score_samples`` sums, per row and tree in tree order starting from 0, the
term ``decision_path_length + average_path_length - 1.0`` of the leaf the row reaches, then
returns ``-(2 ** -(depths / denominator))`` with ``denominator = n_trees *
average_path_length(max_samples)``. Both the per-leaf terms and the denominator depend only on
the fitted forest, so the trainer computes them once with scikit-learn's own functions
(:func:`forest_arrays`) and stores them with the trees; scoring walks the trees
(:mod:`engine.tree_walk`) and does the same float arithmetic in the same order, so the scores
are bit-identical to ``score_samples`` (tests check it) and scoring needs neither
scikit-learn nor its ``_average_path_length``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import ModelError
from engine.tree_walk import TreeArrays

#: Rows walked through the trees at a time: bounds the float32 copy whatever the caller passes
#: (a whole training set, say); every row's score is computed on its own.
CHUNK_ROWS = 65536
PREFIX = "forest"


def forest_arrays(forest: Any) -> dict[str, np.ndarray]:
    """A fitted ``IsolationForest`` as the arrays :meth:`ForestScorer.from_arrays` reads (training time)."""
    from sklearn.ensemble._iforest import _average_path_length

    terms = [(paths + averages - 1.0)[:, None] for paths, averages in
             zip(forest._decision_path_lengths, forest._average_path_length_per_tree, strict=True)]
    subsampled = forest._max_features != forest.n_features_in_
    trees = TreeArrays.from_fitted([e.tree_ for e in forest.estimators_],
                                   forest.estimators_features_ if subsampled else None, terms, forest.n_features_in_)
    denominator = len(forest.estimators_) * _average_path_length([forest._max_samples])
    return {**trees.to_arrays(PREFIX), f"{PREFIX}.denominator": np.asarray(denominator, dtype=np.float64).reshape(1)}


class ForestScorer:
    """``score_samples`` of one fitted ``IsolationForest``, from its arrays."""

    def __init__(self, trees: TreeArrays, denominator: float) -> None:
        if trees.values.shape[1] != 1:
            raise ModelError("the forest tree arrays hold more than one term per leaf")
        self._trees = trees
        self._denominator = np.float64(denominator)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> ForestScorer:
        """The scorer of :func:`forest_arrays`' output (checked: :class:`~engine.errors.ModelError` if inconsistent)."""
        try:
            denominator = float(arrays[f"{PREFIX}.denominator"].reshape(()))
        except (KeyError, ValueError):
            raise ModelError("the forest's denominator is missing or not one number") from None
        return cls(TreeArrays.from_arrays(arrays, PREFIX), denominator)

    def score_samples(self, features: np.ndarray) -> np.ndarray:
        """``forest.score_samples(features)``, bit for bit (lower = more abnormal)."""
        if features.shape[0] <= CHUNK_ROWS:
            return self._score_chunk(features)
        return np.concatenate([self._score_chunk(features[start:start + CHUNK_ROWS])
                               for start in range(0, features.shape[0], CHUNK_ROWS)])

    def _score_chunk(self, features: np.ndarray) -> np.ndarray:
        depths = self._trees.leaf_sums(features)[:, 0]
        denominator = self._denominator
        return -(2 ** (-np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0)))
