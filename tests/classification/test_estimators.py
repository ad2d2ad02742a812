"""scikit-learn estimators: check_estimator, Pipeline / GridSearchCV / SelectFromModel, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.feature_selection import SelectFromModel
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

from unrolled.classification.estimators import DeepIRLSADMMClassifier, IRLSADMMClassifier


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(y))[:200]
    return X[idx], y[idx]


@pytest.mark.parametrize(
    "estimator",
    # A short training keeps the deep estimator's ~56 checks within seconds; no check is exempted.
    [IRLSADMMClassifier(), DeepIRLSADMMClassifier(max_steps=4, batch_size=2)],
    ids=["classic", "deep"],
)
def test_check_estimator(estimator):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(estimator, on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert not failed
    assert len(results) > 40


def test_classic_matches_liblinear_without_intercept(cancer):
    X, y = cancer
    ours = IRLSADMMClassifier(lam=2.0, fit_intercept=False).fit(X, y)
    ref = LogisticRegression(l1_ratio=1.0, C=0.5, fit_intercept=False, solver="liblinear", tol=1e-12,
                             max_iter=100000).fit(X, y)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-5)
    np.testing.assert_array_equal(ours.classes_, ref.classes_)
    np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X), atol=1e-4)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)
    assert ours.converged_ and ours.intercept_.shape == (1,) and ours.coef_.shape == (1, X.shape[1])


def test_string_labels_and_probabilities(cancer):
    X, y = cancer
    labels = np.array(["benign", "malignant"])[y]
    clf = DeepIRLSADMMClassifier(max_steps=10).fit(X, labels)
    assert set(clf.predict(X)) <= {"benign", "malignant"}
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(1)], clf.predict(X))
    assert (clf.predict(X) == labels).mean() > 0.9
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba), atol=1e-10)


def test_pipeline_gridsearch_selectfrommodel(cancer):
    X, y = cancer
    X_raw = X * np.linspace(1, 50, X.shape[1]) + 3.0
    pipe = make_pipeline(StandardScaler(), IRLSADMMClassifier())
    grid = GridSearchCV(pipe, {"irlsadmmclassifier__lam": [0.5, 5.0, 50.0]}, cv=3).fit(X_raw, y)
    assert grid.best_score_ > 0.9 and grid.best_params_["irlsadmmclassifier__lam"] in (0.5, 5.0, 50.0)
    sel = SelectFromModel(IRLSADMMClassifier(lam=20.0), threshold=1e-10).fit(X, y)
    kept = sel.get_support()
    assert 0 < kept.sum() < X.shape[1]
    assert kept.sum() == np.count_nonzero(sel.estimator_.coef_)
    deep = make_pipeline(SelectFromModel(DeepIRLSADMMClassifier(max_steps=5), threshold=1e-10),
                         DeepIRLSADMMClassifier(max_steps=5)).fit(X, y)
    assert deep.score(X, y) > 0.9


@pytest.mark.parametrize("cls", [IRLSADMMClassifier, DeepIRLSADMMClassifier])
def test_bad_input_messages(cls):
    X = np.random.default_rng(0).normal(size=(12, 3))
    y = np.array([0, 1] * 6)
    fast = {"max_steps": 2} if cls is DeepIRLSADMMClassifier else {}
    with pytest.raises(ValueError, match="Only binary classification"):
        cls(**fast).fit(X, np.arange(12) % 3)
    with pytest.raises(ValueError, match="Unknown label type"):
        cls(**fast).fit(X, np.linspace(0, 1, 12))
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cls(**fast).fit(X_nan, y)
    X_inf = X.copy()
    X_inf[1, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        cls(**fast).fit(X_inf, y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        cls(**fast).fit(X, y[:-1])
    fitted = cls(**fast).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :2])


def test_negative_lambda_and_bad_params():
    X = np.random.default_rng(0).normal(size=(12, 3))
    y = np.array([0, 1] * 6)
    with pytest.raises(ValueError, match="lam must be >= 0"):
        IRLSADMMClassifier(lam=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="F_init must be > 0"):
        DeepIRLSADMMClassifier(F_init=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="max_steps"):
        DeepIRLSADMMClassifier(max_steps=0).fit(X, y)


def test_reweighted_classifier(cancer):
    X, y = cancer
    plain = IRLSADMMClassifier(lam=5.0).fit(X, y)
    rew = IRLSADMMClassifier(lam=5.0, n_reweight=2).fit(X, y)
    np.testing.assert_allclose(plain.weights_, 5.0)
    assert rew.weights_.shape == (X.shape[1],) and (rew.weights_ > 0).all()
    assert not np.allclose(rew.weights_, 5.0) and rew.converged_
    assert rew.score(X, y) > 0.9
