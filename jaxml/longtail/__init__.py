"""Long-tailed recognition: post-hoc logit adjustment and neural collapse.

Hasegawa & Sato, "Multiplicative Logit Adjustment Approximates Neural-Collapse-Aware Decision
Boundary Adjustment", ICLR 2025 (arXiv 2409.17582).

* :mod:`~jaxml.longtail.adjust`: additive (ALA), multiplicative (MLA) and neural-collapse-aware
  pairwise (1vs1) adjusters behind one entry, :func:`adjust` / :func:`predict`;
* :mod:`~jaxml.longtail.angles`: decision-boundary angles implied by MLA and ALA, and the
  NC-aware optimum;
* :mod:`~jaxml.longtail.collapse`: fixed simplex-ETF head, feature-norm penalty, NC1-NC3 metrics;
* :mod:`~jaxml.longtail.imbalance`: exponential long-tailed profile and splits, Many / Medium /
  Few accuracy;
* :mod:`~jaxml.longtail.tuning`: gamma search on a balanced validation split;
* :mod:`~jaxml.longtail.simulation`: synthetic collapsed features with spread ``∝ n_k**-1/2``;
* :mod:`~jaxml.longtail.models`: MLP / CNN / ResNet feature extractors for the ETF head;
* :mod:`~jaxml.longtail.recipe`: the neural-collapse training recipe (loss, optimiser, batches).
"""

from jaxml.longtail.adjust import (
    AdjustMethod,
    additive_adjust,
    adjust,
    check_pairwise_angles,
    etf_angle,
    multiplicative_adjust,
    pairwise_angles,
    pairwise_kappa,
    pairwise_votes,
    predict,
)
from jaxml.longtail.angles import ala_boundary_angle, fit_gamma, mla_boundary_angle, nc_boundary_angle
from jaxml.longtail.collapse import (
    class_mean_norms,
    class_means,
    collapse_metrics,
    etf_gram,
    etf_logits,
    feature_norm_penalty,
    nc1_within_class,
    nc2_etf_distance,
    nc3_alignment,
    simplex_etf,
)
from jaxml.longtail.imbalance import (
    LongTailData,
    LongTailSplit,
    exponential_profile,
    grouped_accuracy,
    longtail_indices,
    longtail_split,
    per_class_accuracy,
    shot_groups,
)
from jaxml.longtail.models import Backbone, BackboneConfig, apply_backbone, init_backbone
from jaxml.longtail.simulation import class_spreads, sample_collapsed_features
from jaxml.longtail.recipe import (
    NCRecipe,
    augment_crop_flip,
    batch_sampler,
    batched_features,
    init_nc_params,
    input_normaliser,
    nc_head,
    nc_loss_fn,
    nc_optimizer,
    split_nc_params,
)
from jaxml.longtail.tuning import (
    GammaSearch,
    MethodEvaluation,
    accuracy_curve,
    evaluate_methods,
    predict_batched,
    tune_gamma,
)

__all__ = [
    "AdjustMethod", "additive_adjust", "adjust", "check_pairwise_angles", "etf_angle",
    "multiplicative_adjust", "pairwise_angles", "pairwise_kappa", "pairwise_votes", "predict",
    "ala_boundary_angle", "fit_gamma", "mla_boundary_angle", "nc_boundary_angle",
    "class_mean_norms", "class_means", "collapse_metrics", "etf_gram", "etf_logits",
    "feature_norm_penalty", "nc1_within_class", "nc2_etf_distance", "nc3_alignment", "simplex_etf",
    "LongTailData", "LongTailSplit", "exponential_profile", "grouped_accuracy", "longtail_indices",
    "longtail_split", "per_class_accuracy", "shot_groups",
    "Backbone", "BackboneConfig", "apply_backbone", "init_backbone",
    "class_spreads", "sample_collapsed_features",
    "NCRecipe", "augment_crop_flip", "batch_sampler", "batched_features", "input_normaliser", "nc_loss_fn",
    "nc_optimizer", "init_nc_params", "split_nc_params", "nc_head",
    "GammaSearch", "MethodEvaluation", "accuracy_curve", "evaluate_methods", "predict_batched", "tune_gamma",
]
