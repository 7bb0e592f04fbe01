"""Sum-product networks: random region-graph structures, exact inference, and Bayesian learning
with the bottom-up Gibbs sampler (Trapp et al. 2019) and the top-down collapsed sampler
(Yokoi & Sato 2024, arXiv 2406.12353)."""

from jaxml.spn.bayes import (
    CountLayout,
    Sampler,
    SamplerInfo,
    SamplerKind,
    SamplerState,
    SpnPrior,
    bottom_up_gibbs,
    collapsed_log_joint,
    count_layout,
    counts_from_trees,
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

__all__ = [
    "CountLayout", "Sampler", "SamplerInfo", "SamplerKind", "SamplerState", "SpnPrior",
    "bottom_up_gibbs", "collapsed_log_joint", "count_layout", "counts_from_trees", "make_prior",
    "make_sampler", "posterior_predictive_ll", "predictive_params", "random_trees", "top_down_mh",
    "tree_counts", "batch_log_likelihood", "init_params", "leaf_log_likelihood", "log_likelihood",
    "mpe", "sample", "tree_nodes", "upward", "LeafKind", "RatSpnConfig", "SpnStructure",
    "build_structure", "choices_per_level", "describe", "nodes_per_level",
]
