"""scikit-learn estimators: :class:`IRLSADMMClassifier` (classic) and :class:`DeepIRLSADMMClassifier` (unrolled).

Both are binary linear classifiers with an l1-type penalty, validated the
scikit-learn way (``validate_data``, ``check_classification_targets``), so bad
input fails with the messages scikit-learn users know. They expose ``coef_``
(shape ``(1, n_features)``), ``intercept_``, ``classes_``, ``decision_function``,
``predict``, ``predict_proba``, and work with ``Pipeline``, ``GridSearchCV`` and
``SelectFromModel``. Computation is float64 on the CPU.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from unrolled.classification.bayes import reweighted_irls_admm
from unrolled.classification.nets import F_INIT, RHO_INIT, DeepIRLSADMMNet
from unrolled.classification.training import train_deep_irls

__all__ = ["IRLSADMMClassifier", "DeepIRLSADMMClassifier"]


def _check_number(name: str, value, *, low: float = 0.0, allow_low: bool = True, integer: bool = False):
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite {'integer' if integer else 'number'}, got {value!r}")
    if value < low or (value == low and not allow_low):
        raise ValueError(f"{name} must be {'>=' if allow_low else '>'} {low}, got {value!r}")
    return value


class _LinearBinaryMixin(ClassifierMixin):
    """Shared label handling and prediction of the two estimators."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _validate_fit_input(self, X, y):
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_min_samples=2)
        check_classification_targets(y)
        classes = np.unique(y)
        if len(classes) != 2:
            raise ValueError(f"Only binary classification is supported; {type(self).__name__} needs y with exactly "
                             f"2 classes, got {len(classes)} ({type_of_target(y)} target)")
        self.classes_ = classes
        y_pm = np.where(y == self.classes_[1], 1.0, -1.0)
        return torch.tensor(X, dtype=torch.float64), torch.from_numpy(y_pm)

    def decision_function(self, X):
        """Signed score ``X @ coef_ + intercept_``; positive means ``classes_[1]``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return X @ self.coef_[0] + self.intercept_[0]

    def predict(self, X):
        """Predicted class labels."""
        d = self.decision_function(X)
        return self.classes_[(d > 0).astype(int)]

    def predict_proba(self, X):
        """Probabilities of ``classes_[0]`` and ``classes_[1]`` (logistic model), shape ``(n, 2)``."""
        d = self.decision_function(X)
        p1 = 0.5 * (1.0 + np.tanh(0.5 * d))  # sigmoid without overflow
        return np.column_stack([1.0 - p1, p1])

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        d = self.decision_function(X)
        return np.column_stack([-np.logaddexp(0, d), -np.logaddexp(0, -d)])


class IRLSADMMClassifier(_LinearBinaryMixin, BaseEstimator):
    """l1 logistic regression solved by IRLS-ADMM (:func:`~unrolled.classification.solvers.irls_admm`).

    Minimises ``sum_n log(1 + exp(-y_n (x_n.beta + b))) + lam * ||beta||_1`` (the
    intercept ``b`` is unpenalised); ``lam = 1 / C`` of liblinear's l1 logistic regression.

    Parameters
    ----------
    lam : float, default 1.0
        l1 weight, ``>= 0``.
    fit_intercept : bool, default True
    n_reweight : int, default 0
        Re-estimate per-feature weights from the hyper-parameters this many
        times (:func:`~unrolled.classification.bayes.reweighted_irls_admm`); the
        first solve uses ``lam``.
    max_iter, tol : int, float
        Outer iterations and KKT tolerance of the solver.

    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features)
    intercept_ : ndarray of shape (1,)
    classes_ : ndarray of shape (2,)
    weights_ : ndarray of shape (n_features,)
        l1 weights of the last solve.
    n_iter_ : int
    converged_ : bool
    """

    def __init__(self, lam: float = 1.0, fit_intercept: bool = True, n_reweight: int = 0, max_iter: int = 100,
                 tol: float = 1e-8):
        self.lam = lam
        self.fit_intercept = fit_intercept
        self.n_reweight = n_reweight
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, X, y):
        """Fit on ``X`` ``(n_samples, n_features)`` and binary labels ``y``."""
        _check_number("lam", self.lam)
        _check_number("n_reweight", self.n_reweight, integer=True)
        _check_number("max_iter", self.max_iter, low=1, integer=True)
        _check_number("tol", self.tol)
        Xt, yt = self._validate_fit_input(X, y)
        res, w = reweighted_irls_admm(Xt, yt, float(self.lam), n_reweight=int(self.n_reweight),
                                      fit_intercept=bool(self.fit_intercept), max_iter=int(self.max_iter),
                                      tol=float(self.tol))
        self.coef_ = res.beta.numpy().reshape(1, -1).copy()
        self.intercept_ = np.array([float(res.intercept)])
        self.weights_ = np.asarray(w, dtype=np.float64).reshape(-1).copy()
        self.n_iter_, self.converged_ = int(res.n_iter), bool(res.converged)
        return self


class DeepIRLSADMMClassifier(_LinearBinaryMixin, BaseEstimator):
    """Deep IRLS-ADMM net (:class:`~unrolled.classification.nets.DeepIRLSADMMNet`) trained on the data.

    ``fit`` initialises the net as the paper does (``rho = t = 1``, ``F = F_init``),
    learns ``rho_{k,i}``, ``F_{k,i}``, ``t_k`` by Adam on the logistic loss through
    the shared Trainer (mini-batches are random row subsets), then runs the
    trained net on the whole training set: its output is ``coef_`` / ``intercept_``.

    Parameters
    ----------
    k_max, i_max : int, default 3, 4
    F_init, rho_init : float, default 10, 1
    fit_intercept : bool, default True
    sparse_direction : bool, default True
        Exact zeros in ``coef_`` (see :class:`DeepIRLSADMMNet`).
    max_steps, lr, batch_size : training settings (Adam on the log-parameters).
    subsample, holdout : float
        Row fractions of each training draw (see :class:`~unrolled.classification.training.SubsetSampler`);
        ``holdout=0`` is the paper's loss (32) on the rows the net sees.
    random_state : int, default 0

    Attributes
    ----------
    coef_, intercept_, classes_ : as :class:`IRLSADMMClassifier`
    net_ : DeepIRLSADMMNet
        The trained network.
    train_result_ : unrolled.core.train.TrainResult
    """

    def __init__(self, k_max: int = 3, i_max: int = 4, F_init: float = F_INIT, rho_init: float = RHO_INIT,
                 fit_intercept: bool = True, sparse_direction: bool = True, max_steps: int = 100, lr: float = 0.05,
                 batch_size: int = 4, subsample: float = 0.8, holdout: float = 0.0, random_state: int = 0):
        self.k_max = k_max
        self.i_max = i_max
        self.F_init = F_init
        self.rho_init = rho_init
        self.fit_intercept = fit_intercept
        self.sparse_direction = sparse_direction
        self.max_steps = max_steps
        self.lr = lr
        self.batch_size = batch_size
        self.subsample = subsample
        self.holdout = holdout
        self.random_state = random_state

    def fit(self, X, y):
        """Train the net on ``X`` ``(n_samples, n_features)`` and binary labels ``y``."""
        for name in ("k_max", "i_max", "max_steps", "batch_size"):
            _check_number(name, getattr(self, name), low=1, integer=True)
        for name in ("F_init", "rho_init", "lr"):
            _check_number(name, getattr(self, name), allow_low=False)
        _check_number("random_state", self.random_state, integer=True)
        Xt, yt = self._validate_fit_input(X, y)
        net = DeepIRLSADMMNet.from_algorithm(Xt.shape[1], float(self.F_init), rho=float(self.rho_init),
                                             k_max=int(self.k_max), i_max=int(self.i_max),
                                             fit_intercept=bool(self.fit_intercept),
                                             sparse_direction=bool(self.sparse_direction))
        self.train_result_ = train_deep_irls(net, Xt, yt, max_steps=int(self.max_steps), lr=float(self.lr),
                                             batch_size=int(self.batch_size), subsample=float(self.subsample),
                                             holdout=float(self.holdout), seed=int(self.random_state))
        with torch.no_grad():
            beta = net((Xt, yt)).numpy()
        if not np.isfinite(beta).all():
            raise FloatingPointError("the trained deep IRLS-ADMM net gave non-finite coefficients")
        p = Xt.shape[1]
        self.coef_ = beta[:p].reshape(1, -1).copy()
        self.intercept_ = np.array([beta[p] if self.fit_intercept else 0.0])
        self.net_ = net
        return self
