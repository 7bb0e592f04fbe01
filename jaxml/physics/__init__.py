"""jaxml.physics: physics-informed linear models and affine-variety dimensions.

Koshizuka & Sato, "Understanding Generalization in Physics Informed Models through Affine
Variety Dimensions", arXiv 2501.18879. Bases phi (:mod:`.bases`), differential operators D
(:mod:`.operators`), trial functions for the strong and weak forms (:mod:`.trials`), the
constraints p_k(w) = <D[w^T phi], psi_k> (:mod:`.constraints`) and discretised schemes
(:mod:`.schemes`), the dimension estimator d_V (:mod:`.variety`), simulators
(:mod:`.simulators`), ridge / PILR estimators with validation tuning (:mod:`.estimators`), and
a sympy cross-check (:mod:`.symbolic`).
"""

from jaxml.physics.bases import (
    Basis,
    FourierBasis,
    NodalBasis,
    PolynomialBasis,
    SpaceTimeFourierBasis,
    feature_matrix,
    fourier_basis_for_dim,
)
from jaxml.physics.constraints import Constraint, OperatorConstraint, operator_matrix
from jaxml.physics.estimators import (
    Estimator,
    Selection,
    gauss_newton,
    hyper_grid,
    log_uniform_grid,
    log_uniform_samples,
    mse,
    pilr,
    pilr_nonlinear_fit,
    pilr_nonlinear_loss,
    tune_pilr_nonlinear,
    ridge,
    tune_pilr,
    tune_ridge,
)
from jaxml.physics.operators import (
    BernoulliOperator,
    HeatOperator,
    LinearODE,
    Operator,
    QuadraticTransport,
    harmonic_oscillator_operator,
)
from jaxml.physics.schemes import EulerBernoulliScheme, FiniteDiffusionScheme
from jaxml.physics.simulators import (
    bernoulli_trajectory,
    diffusion_solution,
    fd_diffusion_trajectory,
    noisy_observations,
    oscillator_solution,
    project_many,
    project_onto_basis,
    sample_bernoulli_conditions,
    sample_box,
    sample_diffusion_conditions,
    sample_oscillator_conditions,
)
from jaxml.physics.trials import TrialSet, dirac, tested_values, weak_hats_1d, weak_hats_tensor
from jaxml.physics.variety import (
    linear_part_lower_bound,
    linear_variety_dimension,
    matrix_rank,
    max_residual,
    tangent_dimensions,
    variety_dimension,
)

__all__ = [
    "Basis", "FourierBasis", "NodalBasis", "PolynomialBasis", "SpaceTimeFourierBasis",
    "feature_matrix", "fourier_basis_for_dim",
    "Constraint", "OperatorConstraint", "operator_matrix",
    "Estimator", "Selection", "gauss_newton", "hyper_grid", "log_uniform_grid", "log_uniform_samples", "mse",
    "pilr", "pilr_nonlinear_fit", "pilr_nonlinear_loss", "tune_pilr_nonlinear", "ridge", "tune_pilr", "tune_ridge",
    "BernoulliOperator", "HeatOperator", "LinearODE", "Operator", "QuadraticTransport",
    "harmonic_oscillator_operator",
    "EulerBernoulliScheme", "FiniteDiffusionScheme",
    "bernoulli_trajectory", "diffusion_solution", "fd_diffusion_trajectory", "noisy_observations",
    "oscillator_solution", "project_many", "project_onto_basis", "sample_bernoulli_conditions", "sample_box",
    "sample_diffusion_conditions", "sample_oscillator_conditions",
    "TrialSet", "dirac", "tested_values", "weak_hats_1d", "weak_hats_tensor",
    "linear_part_lower_bound", "linear_variety_dimension", "matrix_rank", "max_residual",
    "tangent_dimensions", "variety_dimension",
]
