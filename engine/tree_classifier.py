"""The diagnosis classifier's ``predict_proba``, from its trees as arrays, without scikit-learn.

A fitted tree ensemble classifier (:mod:`ml.diagnosis_training`'s ``ExtraTreesClassifier``)
answers ``predict_proba`` by adding, tree after tree from zeros, the class fractions stored at
the leaf each row reaches (a tree's own ``predict_proba`` in this scikit-learn release returns
its leaf's ``value`` row as is), then dividing by the number of trees. The trainer stores those
leaf rows with the trees (:func:`classifier_arrays`); :class:`TreeClassifier` walks them
(:mod:`engine.tree_walk`) and does the same additions and division, so its probabilities are
bit-identical (tests check it), at one compiled call per alarm instead of a joblib dispatch per tree.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import ModelError
from engine.tree_walk import TreeArrays

PREFIX = "classifier"


def classifier_arrays(classifier: Any) -> dict[str, np.ndarray]:
    """A fitted single-output tree ensemble classifier as the arrays :meth:`TreeClassifier.from_arrays` reads."""
    classes = np.asarray(classifier.classes_)
    trees = [estimator.tree_ for estimator in classifier.estimators_]
    fractions = [tree.value[:, 0, :len(classes)] for tree in trees]
    return {**TreeArrays.from_fitted(trees, None, fractions, classifier.n_features_in_).to_arrays(PREFIX),
            f"{PREFIX}.classes": classes.astype(np.int64)}


class TreeClassifier:
    """``predict_proba`` and ``classes_`` of a fitted tree ensemble classifier, from its arrays."""

    def __init__(self, trees: TreeArrays, classes: np.ndarray) -> None:
        self._trees = trees
        self.classes_ = classes

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> TreeClassifier | None:
        """The classifier of :func:`classifier_arrays`' output, None if the artifact has none (checked:
        :class:`~engine.errors.ModelError` if inconsistent)."""
        if f"{PREFIX}.classes" not in arrays:
            return None
        classes = arrays[f"{PREFIX}.classes"]
        trees = TreeArrays.from_arrays(arrays, PREFIX)
        if classes.ndim != 1 or trees.values.shape[1] != len(classes):
            raise ModelError("the classifier tree arrays do not hold one fraction per class")
        return cls(trees, classes)

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        """The ensemble's ``predict_proba(rows)``, bit for bit (rows x classes, in ``classes_`` order)."""
        total = self._trees.leaf_sums(rows)
        total /= self._trees.tree_count
        return total
