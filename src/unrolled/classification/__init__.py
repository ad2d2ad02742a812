"""Classification: l1 logistic regression by IRLS-ADMM and the deep IRLS-ADMM net (Sec. II-IV of the paper).

Data models of Sec. IV-A (:mod:`.data`), the classic IRLS-ADMM solver of the
weighted l1 logistic problem (4) and its Bayesian reweighting (:mod:`.solvers`,
:mod:`.bayes`), the unrolled network (:mod:`.nets`) -- both run the one outer
step of :mod:`.iteration`, built from the node types of :mod:`.layers` -- its
training (:mod:`.training`), feature-selection scores (:mod:`.selection`) and
scikit-learn estimators (:mod:`.estimators`).
"""

from unrolled.classification.bayes import ard_weights, reweighted_irls_admm
from unrolled.classification.data import CorrelatedFeaturesProblem, gene_expression_like
from unrolled.classification.estimators import DeepIRLSADMMClassifier, IRLSADMMClassifier
from unrolled.classification.iteration import IRLSADMMIteration
from unrolled.classification.nets import DeepIRLSADMMNet
from unrolled.classification.solvers import IRLSADMMResult, irls_admm, kkt_violation, lambda_max, objective
from unrolled.classification.training import SubsetSampler, logistic_loss, train_deep_irls

__all__ = [
    "CorrelatedFeaturesProblem",
    "gene_expression_like",
    "IRLSADMMIteration",
    "IRLSADMMResult",
    "irls_admm",
    "objective",
    "kkt_violation",
    "lambda_max",
    "ard_weights",
    "reweighted_irls_admm",
    "DeepIRLSADMMNet",
    "logistic_loss",
    "SubsetSampler",
    "train_deep_irls",
    "IRLSADMMClassifier",
    "DeepIRLSADMMClassifier",
]
