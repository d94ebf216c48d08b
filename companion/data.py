"""Data the chapters train on, all offline: scikit-learn's bundled sets and generated variants.

Every split is deterministic (a seed in, the same rows out), stratified by class, and returned as
float32/int64 torch tensors ready for a small network.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from sklearn import datasets
from sklearn.model_selection import train_test_split

_LOADERS = {
    "digits": datasets.load_digits,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
}


@dataclass(frozen=True)
class Split:
    """A train/test split as tensors.

    Attributes
    ----------
    X_train, X_test : Tensor, shape (N, D), float32
    y_train, y_test : Tensor, shape (N,), int64
    """

    X_train: torch.Tensor
    X_test: torch.Tensor
    y_train: torch.Tensor
    y_test: torch.Tensor

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int:
        return int(torch.cat([self.y_train, self.y_test]).max()) + 1


def load_split(
    name: str = "digits",
    test_size: float = 0.3,
    seed: int = 0,
    standardize: bool = True,
    n_train: int | None = None,
) -> Split:
    """Load one of scikit-learn's bundled data sets and split it, stratified by class.

    Parameters
    ----------
    name : {"digits", "wine", "breast_cancer"}
        ``digits``: 1,797 8x8 images (64 pixel features, 0..16), 10 classes.
    test_size : float
        Fraction of the rows held out, in (0, 1).
    seed : int
        Seed of the split.
    standardize : bool
        Standardize each feature with the mean and std of the *training* rows only (a constant
        feature keeps scale 1), so that no test statistic leaks into training.
    n_train : int, optional
        Keep only the first ``n_train`` training rows (a small training set, to make overfitting
        visible).

    Returns
    -------
    Split
    """
    if name not in _LOADERS:
        raise ValueError(f"name must be one of {sorted(_LOADERS)}, got {name!r}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    X, y = _LOADERS[name](return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(
        X.astype(np.float64), y, test_size=test_size, random_state=seed, stratify=y
    )
    if n_train is not None:
        if not 0 < n_train <= len(X_tr):
            raise ValueError(f"n_train must be in [1, {len(X_tr)}], got {n_train!r}")
        X_tr, y_tr = X_tr[:n_train], y_tr[:n_train]
    if standardize:
        mean, std = X_tr.mean(axis=0), X_tr.std(axis=0)
        std[std < 1e-12] = 1.0
        X_tr, X_te = (X_tr - mean) / std, (X_te - mean) / std
    return Split(
        torch.tensor(X_tr, dtype=torch.float32),
        torch.tensor(X_te, dtype=torch.float32),
        torch.tensor(y_tr, dtype=torch.int64),
        torch.tensor(y_te, dtype=torch.int64),
    )


def digits_images(split: Split) -> Split:
    """Reshape a digits split's rows (N, 64) into images (N, 1, 8, 8) for convolutional nets."""
    if split.n_features != 64:
        raise ValueError(f"split must hold digits (64 features), got {split.n_features}")
    return Split(
        split.X_train.reshape(-1, 1, 8, 8),
        split.X_test.reshape(-1, 1, 8, 8),
        split.y_train,
        split.y_test,
    )


def shift_domain(X: torch.Tensor, kind: str = "invert", strength: float = 1.0) -> torch.Tensor:
    """A shifted copy of (standardized) inputs: the same labels, another input distribution.

    Parameters
    ----------
    X : Tensor, shape (N, ...)
    kind : {"invert", "contrast", "offset"}
        ``invert``: ``-X`` (dark digits on light ground). ``contrast``: ``(1 + strength) * X``.
        ``offset``: ``X + strength``.
    strength : float
        Size of the contrast change or offset.
    """
    if kind == "invert":
        return -X
    if kind == "contrast":
        return (1.0 + strength) * X
    if kind == "offset":
        return X + strength
    raise ValueError(f"kind must be 'invert', 'contrast' or 'offset', got {kind!r}")


def batches(
    X: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator | None = None,
    drop_last: bool = True,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield shuffled mini-batches ``(X[idx], y[idx])``, one epoch.

    ``drop_last=True`` (the default) drops a short last batch, so that no batch norm layer ever
    sees a batch of one.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if len(X) != len(y):
        raise ValueError(f"X and y must have the same length, got {len(X)} and {len(y)}")
    order = torch.randperm(len(X), generator=generator)
    stop = len(X) - len(X) % batch_size if drop_last else len(X)
    for start in range(0, stop, batch_size):
        idx = order[start : start + batch_size]
        yield X[idx], y[idx]
