"""jaxml.ntk: empirical neural tangent kernels and the LP-FT decomposition.

* :func:`empirical_ntk` with three :class:`NtkImplementation` s (Jacobian contraction, NTK-vector
  products, structured derivatives), chunking over examples and ``wrt`` parameter selection;
* :func:`empirical_ntk_blocks` / :func:`transformer_blocks`: block-wise accumulation over parameter
  groups (embeddings, each layer's attention and MLP, LoRA factors);
* :func:`lpft_decomposition`: pre-train-effective and FT-effective components of a linear-head
  classifier (Tomihari & Sato 2024, arXiv 2405.16747);
* kernel solvers (:func:`fit_predict`) to score each component.
"""

from jaxml.ntk.empirical import (NtkImplementation, empirical_ntk, empirical_ntk_blocks, select_leaves,
                                 transformer_blocks)
from jaxml.ntk.lpft import (LpftNtk, ft_component, kernel_norm, linear_head_apply, lpft_decomposition,
                            pretrain_component)
from jaxml.ntk.solvers import KernelSolver, fit_predict, kernel_accuracy

__all__ = [
    "NtkImplementation", "empirical_ntk", "empirical_ntk_blocks", "select_leaves", "transformer_blocks",
    "LpftNtk", "ft_component", "kernel_norm", "linear_head_apply", "lpft_decomposition", "pretrain_component",
    "KernelSolver", "fit_predict", "kernel_accuracy",
]
