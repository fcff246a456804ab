"""A fitted Isolation Forest's ``score_samples`` without scikit-learn's per-call machinery.

``IsolationForest.score_samples`` validates its input, cuts it into chunks, and dispatches
each of its trees through joblib (sequentially, in tree order); on a consumer's slices of a
few thousand rows that machinery cost as much as the trees themselves. This walks the same
trees with the same ``apply`` (scikit-learn's compiled traversal) and does the same float
arithmetic in the same order: each tree's term ``decision_path_length + average_path_length
- 1.0`` per leaf, added to the depths tree by tree starting from 0, then ``2 ** -(depths /
denominator)``. So the scores are bit-identical to ``score_samples`` (tests check it), and
each leaf's term is computed once per model instead of gathered twice per row and tree.

It reads the fitted forest's attributes scikit-learn itself scores from, and calls each tree's
compiled ``tree_.apply`` directly (the estimator's ``apply`` only re-checks the input's width,
checked here once per call); a model is only loaded under the scikit-learn minor version it was
trained with (:func:`engine.model.load`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Rows walked through the trees at a time: bounds the float32 copy and the leaf indices whatever
#: the caller passes (a whole training set, say); every row's score is computed on its own.
CHUNK_ROWS = 65536


class ForestScorer:
    """``score_samples`` of one fitted ``IsolationForest``, prepared once per loaded model."""

    def __init__(self, forest: Any) -> None:
        from sklearn.ensemble._iforest import _average_path_length

        self._trees = [estimator.tree_ for estimator in forest.estimators_]
        self._width = forest.n_features_in_
        self._features = [np.asarray(f) for f in forest.estimators_features_]
        self._max_features = forest._max_features
        # The same elementwise sum scikit-learn evaluates per gathered leaf, evaluated per node once.
        self._leaf_terms = [paths + averages - 1.0 for paths, averages in
                            zip(forest._decision_path_lengths, forest._average_path_length_per_tree, strict=True)]
        self._denominator = len(self._trees) * _average_path_length([forest._max_samples])

    def score_samples(self, features: np.ndarray) -> np.ndarray:
        """``forest.score_samples(features)``, bit for bit (lower = more abnormal)."""
        if features.shape[0] <= CHUNK_ROWS:
            return self._score_chunk(features)
        return np.concatenate([self._score_chunk(features[start:start + CHUNK_ROWS])
                               for start in range(0, features.shape[0], CHUNK_ROWS)])

    def _score_chunk(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float32)  # the trees split float32 inputs, as score_samples casts
        if x.ndim != 2 or x.shape[1] != self._width:
            raise ValueError(f"the forest scores rows of {self._width} features, got shape {x.shape}")
        subsample = self._max_features != x.shape[1]
        depths = np.zeros(x.shape[0], order="f")
        for tree, columns, terms in zip(self._trees, self._features, self._leaf_terms, strict=True):
            leaves = tree.apply(x[:, columns] if subsample else x)
            depths += terms[leaves]
        denominator = self._denominator
        return -(2 ** (-np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0)))
