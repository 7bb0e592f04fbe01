"""Sum-product networks: random region-graph structures, exact inference, and Bayesian learning
with the bottom-up Gibbs sampler (Trapp et al. 2019) and the top-down collapsed sampler
(Yokoi & Sato 2024, arXiv 2406.12353), Bernoulli and Gaussian leaves, and empirical-Bayes tuning
of the leaf hyperparameters."""

from jaxml.spn.bayes import (
    BetaLeafPrior,
    CountLayout,
    LeafStats,
    NormalGammaLeafPrior,
    Sampler,
    SamplerInfo,
    SamplerKind,
    SamplerState,
    SpnPrior,
    bottom_up_gibbs,
    collapsed_log_joint,
    count_layout,
    counts_from_trees,
    leaf_log_marginal,
    leaf_log_predictive,
    leaf_stats,
    make_normal_gamma_prior,
    make_prior,
    make_sampler,
    posterior_predictive_ll,
    predictive_params,
    random_trees,
    top_down_mh,
    tree_counts,
)
from jaxml.spn.inference import (
    batch_log_likelihood,
    init_params,
    leaf_log_likelihood,
    log_likelihood,
    mpe,
    sample,
    tree_nodes,
    upward,
)
from jaxml.spn.structure import (
    LeafKind,
    RatSpnConfig,
    SpnStructure,
    build_structure,
    choices_per_level,
    describe,
    nodes_per_level,
)
from jaxml.spn.tuning import (
    LeafPriorTuning,
    empirical_bayes_prior,
    neighbourhood_subsamples,
    subsample_log_evidence,
)

__all__ = [
    "BetaLeafPrior", "CountLayout", "LeafStats", "NormalGammaLeafPrior", "Sampler", "SamplerInfo",
    "SamplerKind", "SamplerState", "SpnPrior", "bottom_up_gibbs", "collapsed_log_joint",
    "count_layout", "counts_from_trees", "leaf_log_marginal", "leaf_log_predictive", "leaf_stats",
    "make_normal_gamma_prior", "make_prior", "make_sampler", "posterior_predictive_ll",
    "predictive_params", "random_trees", "top_down_mh", "tree_counts",
    "batch_log_likelihood", "init_params", "leaf_log_likelihood", "log_likelihood", "mpe",
    "sample", "tree_nodes", "upward",
    "LeafKind", "RatSpnConfig", "SpnStructure", "build_structure", "choices_per_level",
    "describe", "nodes_per_level",
    "LeafPriorTuning", "empirical_bayes_prior", "neighbourhood_subsamples",
    "subsample_log_evidence",
]
