"""Fixed feature bases for physics-informed linear models f_w(x) = w^T phi(x).

Koshizuka & Sato, "Understanding Generalization in Physics Informed Models through Affine
Variety Dimensions", arXiv 2501.18879, Section 3: the hypothesis class is a linear model on a
fixed basis phi_1..phi_d. Every basis here is a frozen (hashable) dataclass whose ``__call__``
maps one input point to the feature vector of shape (d,). Derivatives of the features are
taken by JAX autodiff of ``__call__`` (see :mod:`jaxml.physics.operators`), so a basis only
has to be written once. ``sympy_functions`` returns the same functions as sympy expressions
for the symbolic cross-check in :mod:`jaxml.physics.symbolic`.

Input convention: a 1-D basis (``input_dim == 1``) takes a scalar x (shape ()); a space-time
basis (``input_dim == 2``) takes a point z = (x, t) of shape (2,).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Protocol, Sequence, runtime_checkable

import jax
import jax.numpy as jnp
import sympy
from jax import Array

__all__ = [
    "Basis",
    "FourierBasis",
    "PolynomialBasis",
    "NodalBasis",
    "SpaceTimeFourierBasis",
    "fourier_basis_for_dim",
    "feature_matrix",
]


@runtime_checkable
class Basis(Protocol):
    """A fixed basis phi: R^input_dim -> R^dim (the protocol every basis implements)."""

    @property
    def dim(self) -> int: ...

    @property
    def input_dim(self) -> int: ...

    def __call__(self, x: Array) -> Array: ...

    def sympy_functions(self, symbols: Sequence[sympy.Symbol]) -> list[sympy.Expr]: ...


def _check_interval(name: str, lo: float, hi: float) -> None:
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"{name}: need finite lo < hi, got lo={lo}, hi={hi}; pass an interval with hi > lo.")


@dataclasses.dataclass(frozen=True)
class FourierBasis:
    """Trigonometric basis {1, cos(omega_j x), sin(omega_j x)}_{j=1..J} on [0, T].

    omega_j = j * pi / T (arXiv 2501.18879, Section 5.1, harmonic oscillator), so the basis has
    d = 2J + 1 functions (J + 0 without the constant). Ordering: [1, cos(omega_1 x), ...,
    cos(omega_J x), sin(omega_1 x), ..., sin(omega_J x)].

    Attributes:
      num_frequencies: J >= 1.
      length: T > 0, the length of the interval; omega_j = j pi / T.
      include_constant: whether phi_0 = 1 is included.
    """

    num_frequencies: int
    length: float = 2.0 * math.pi
    include_constant: bool = True

    def __post_init__(self) -> None:
        if int(self.num_frequencies) != self.num_frequencies or self.num_frequencies < 1:
            raise ValueError(
                f"FourierBasis.num_frequencies must be an integer >= 1, got {self.num_frequencies}."
            )
        if not (math.isfinite(self.length) and self.length > 0):
            raise ValueError(f"FourierBasis.length must be a finite positive number, got {self.length}.")

    @property
    def dim(self) -> int:
        return 2 * self.num_frequencies + int(self.include_constant)

    @property
    def input_dim(self) -> int:
        return 1

    @property
    def frequencies(self) -> Array:
        """omega_j = j pi / T for j = 1..J, shape (J,)."""
        return jnp.arange(1, self.num_frequencies + 1) * (math.pi / self.length)

    def __call__(self, x: Array) -> Array:
        x = jnp.asarray(x)
        omega = self.frequencies.astype(jnp.result_type(x, 1.0))
        parts = [jnp.cos(omega * x), jnp.sin(omega * x)]
        if self.include_constant:
            parts.insert(0, jnp.ones((1,), dtype=parts[0].dtype))
        return jnp.concatenate(parts)

    def sympy_functions(self, symbols: Sequence[sympy.Symbol]) -> list[sympy.Expr]:
        (x,) = symbols
        omegas = [sympy.Integer(j) * sympy.pi / sympy.Float(self.length, 30) for j in range(1, self.num_frequencies + 1)]
        funcs = [sympy.cos(w * x) for w in omegas] + [sympy.sin(w * x) for w in omegas]
        return ([sympy.Integer(1)] if self.include_constant else []) + funcs


def fourier_basis_for_dim(d: int, length: float = 2.0 * math.pi) -> FourierBasis:
    """The FourierBasis with constant and d = 2J + 1 functions (d odd, d >= 3)."""
    if int(d) != d or d < 3 or d % 2 == 0:
        raise ValueError(f"fourier_basis_for_dim: d must be an odd integer >= 3 (d = 2J + 1), got {d}.")
    return FourierBasis((int(d) - 1) // 2, length)


@dataclasses.dataclass(frozen=True)
class PolynomialBasis:
    """Legendre polynomials P_0..P_p of s = (2x - lo - hi) / (hi - lo) on [lo, hi].

    Legendre rather than monomials keeps the feature matrix well conditioned; the span (all
    polynomials of degree <= p, d = p + 1) is the same. Three-term recurrence
    (j + 1) P_{j+1}(s) = (2j + 1) s P_j(s) - j P_{j-1}(s).
    """

    degree: int
    lo: float = -1.0
    hi: float = 1.0

    def __post_init__(self) -> None:
        if int(self.degree) != self.degree or self.degree < 0:
            raise ValueError(f"PolynomialBasis.degree must be an integer >= 0, got {self.degree}.")
        _check_interval("PolynomialBasis", self.lo, self.hi)

    @property
    def dim(self) -> int:
        return int(self.degree) + 1

    @property
    def input_dim(self) -> int:
        return 1

    def __call__(self, x: Array) -> Array:
        x = jnp.asarray(x)
        s = (2.0 * x - (self.lo + self.hi)) / (self.hi - self.lo)
        values = [jnp.ones_like(s)]
        if self.degree >= 1:
            values.append(s)
        for j in range(1, self.degree):
            values.append(((2 * j + 1) * s * values[j] - j * values[j - 1]) / (j + 1))
        return jnp.stack(values)

    def sympy_functions(self, symbols: Sequence[sympy.Symbol]) -> list[sympy.Expr]:
        (x,) = symbols
        s = (2 * x - sympy.Float(self.lo + self.hi, 30)) / sympy.Float(self.hi - self.lo, 30)
        return [sympy.expand(sympy.legendre(j, s)) for j in range(self.dim)]


@dataclasses.dataclass(frozen=True)
class NodalBasis:
    """Piecewise-linear hat functions on the uniform grid x_j = lo + j h, j = 0..N-1.

    phi_j(x) = max(0, 1 - |x - x_j| / h), h = (hi - lo) / (N - 1), so w_j = f_w(x_j): the weights
    are the nodal values (arXiv 2501.18879, Section 5.3, discretised equations). Autodiff gives
    the piecewise-constant first derivative; second derivatives vanish almost everywhere, so
    use discretised schemes (:mod:`jaxml.physics.schemes`) rather than strong-form operators of
    order 2 with this basis.
    """

    num_nodes: int
    lo: float = 0.0
    hi: float = 1.0

    def __post_init__(self) -> None:
        if int(self.num_nodes) != self.num_nodes or self.num_nodes < 2:
            raise ValueError(f"NodalBasis.num_nodes must be an integer >= 2, got {self.num_nodes}.")
        _check_interval("NodalBasis", self.lo, self.hi)

    @property
    def dim(self) -> int:
        return int(self.num_nodes)

    @property
    def input_dim(self) -> int:
        return 1

    @property
    def spacing(self) -> float:
        return (self.hi - self.lo) / (self.num_nodes - 1)

    @property
    def nodes(self) -> Array:
        return self.lo + self.spacing * jnp.arange(self.num_nodes)

    def __call__(self, x: Array) -> Array:
        x = jnp.asarray(x)
        return jnp.maximum(0.0, 1.0 - jnp.abs(x - self.nodes.astype(jnp.result_type(x, 1.0))) / self.spacing)

    def sympy_functions(self, symbols: Sequence[sympy.Symbol]) -> list[sympy.Expr]:
        (x,) = symbols
        h = sympy.Float(self.spacing, 30)
        out = []
        for j in range(self.dim):
            xj = sympy.Float(self.lo, 30) + j * h
            out.append(sympy.Piecewise((1 - sympy.Abs(x - xj) / h, sympy.Abs(x - xj) <= h), (0, True)))
        return out


@dataclasses.dataclass(frozen=True)
class SpaceTimeFourierBasis:
    """Tensor-product space-time basis for the periodic heat equation u_t = kappa u_xx.

    phi(x, t) = [1] + [cos(j k0 x) g_m(t)]_{j, m} + [sin(j k0 x) g_m(t)]_{j, m} with j = 1..d_x,
    m = 1..d_t, k0 = 2 pi / L (L the spatial period) and time factors g_m(t) = exp(-kappa (m k0)^2 t),
    so d = 2 d_x d_t + 1 (arXiv 2501.18879, Section 5.1, diffusion: d = 2 d_x d_t + 1, d_V = 5 at
    d_t = 2).

    Reconstruction: the notes give d and d_V but not the time factors. We use the heat
    semigroup's decay rates of the first d_t spatial modes, the standard choice under which
    the exact solutions with modes j <= d_t lie in the span; the kernel of u_t - kappa u_xx in
    this span is then {1} and cos/sin(j k0 x) exp(-kappa (j k0)^2 t) for j <= min(d_x, d_t),
    i.e. d_V = 1 + 2 min(d_x, d_t) (= 5 for d_t = 2). Ordering is cos block then sin block,
    each j-major (index (j - 1) * d_t + (m - 1)).
    """

    num_space: int
    num_time: int = 2
    period: float = 2.0 * math.pi
    kappa: float = 1.0

    def __post_init__(self) -> None:
        for name in ("num_space", "num_time"):
            v = getattr(self, name)
            if int(v) != v or v < 1:
                raise ValueError(f"SpaceTimeFourierBasis.{name} must be an integer >= 1, got {v}.")
        if not (math.isfinite(self.period) and self.period > 0):
            raise ValueError(f"SpaceTimeFourierBasis.period must be positive, got {self.period}.")
        if not (math.isfinite(self.kappa) and self.kappa > 0):
            raise ValueError(f"SpaceTimeFourierBasis.kappa must be positive, got {self.kappa}.")

    @property
    def dim(self) -> int:
        return 2 * self.num_space * self.num_time + 1

    @property
    def input_dim(self) -> int:
        return 2

    @property
    def wavenumbers(self) -> Array:
        return jnp.arange(1, self.num_space + 1) * (2.0 * math.pi / self.period)

    @property
    def decay_rates(self) -> Array:
        k = jnp.arange(1, self.num_time + 1) * (2.0 * math.pi / self.period)
        return self.kappa * k**2

    def __call__(self, z: Array) -> Array:
        z = jnp.asarray(z)
        z = z.astype(jnp.result_type(z, 1.0))
        if z.shape != (2,):
            raise ValueError(f"SpaceTimeFourierBasis expects one point z = (x, t) of shape (2,), got {z.shape}.")
        x, t = z[0], z[1]
        kx = self.wavenumbers.astype(z.dtype) * x
        g = jnp.exp(-self.decay_rates.astype(z.dtype) * t)
        cos_part = (jnp.cos(kx)[:, None] * g[None, :]).reshape(-1)
        sin_part = (jnp.sin(kx)[:, None] * g[None, :]).reshape(-1)
        return jnp.concatenate([jnp.ones((1,), dtype=cos_part.dtype), cos_part, sin_part])

    def sympy_functions(self, symbols: Sequence[sympy.Symbol]) -> list[sympy.Expr]:
        x, t = symbols
        k0 = 2 * sympy.pi / sympy.Float(self.period, 30)
        kappa = sympy.Float(self.kappa, 30)
        cos_part, sin_part = [], []
        for j in range(1, self.num_space + 1):
            for m in range(1, self.num_time + 1):
                g = sympy.exp(-kappa * (m * k0) ** 2 * t)
                cos_part.append(sympy.cos(j * k0 * x) * g)
                sin_part.append(sympy.sin(j * k0 * x) * g)
        return [sympy.Integer(1)] + cos_part + sin_part


def feature_matrix(basis: Basis, points: Array) -> Array:
    """Phi[i, j] = phi_j(x_i) for points of shape (n,) (1-D bases) or (n, input_dim).

    Args:
      basis: any :class:`Basis`.
      points: the inputs, one per row.

    Returns:
      Array of shape (n, basis.dim).
    """
    points = jnp.asarray(points)
    expected = 1 if basis.input_dim == 1 else 2
    if points.ndim != expected or (basis.input_dim > 1 and points.shape[-1] != basis.input_dim):
        want = "(n,)" if basis.input_dim == 1 else f"(n, {basis.input_dim})"
        raise ValueError(f"feature_matrix: points must have shape {want} for this basis, got {points.shape}.")
    return _feature_matrix(basis, points)


@functools.partial(jax.jit, static_argnums=0)
def _feature_matrix(basis: Basis, points: Array) -> Array:
    return jax.vmap(basis)(points)
