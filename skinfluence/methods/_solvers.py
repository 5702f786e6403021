"""Linear solves with the Hessian: Cholesky (small P), CG and LiSSA (large P).

The solvers are written against the array operators only, so the CG loop runs
unchanged on numpy arrays and on torch tensors (no host round-trips on CUDA).
"""
import numpy as np
from scipy.linalg import cho_factor, cho_solve, eigvalsh


def add_null_curvature(H, null_directions):
    """Add unit curvature (scaled to H) along directions every gradient is orthogonal to.

    For b orthogonal to those directions, ``(H + s N N^T)^-1 b`` is exactly the
    pseudo-inverse solution on the identifiable subspace, whatever ``s > 0``.
    Returns a new array; ``N N^T`` is added on each direction's support only
    (no second P x P array).
    """
    if null_directions is None or null_directions.shape[1] == 0:
        return H
    return _null_curvature_into(np.array(H, dtype=np.float64), null_directions)


def _null_curvature_into(out, null_directions):
    """:func:`add_null_curvature` written into ``out`` itself."""
    scale = max(np.trace(out) / out.shape[0], 1e-12)
    for u in null_directions.T:
        idx = np.flatnonzero(u)
        out[np.ix_(idx, idx)] += scale * np.outer(u[idx], u[idx])
    return out


def factorize(H, damping="auto", null_directions=None, overwrite_h=False):
    """Cholesky factor of ``H + damping I`` (on the identifiable subspace).

    ``damping="auto"``: 0 when H is positive definite, else the smallest value
    that makes it so (``-lambda_min`` plus a relative margin). Returns
    ``(factor, damping_used)``. Holds one P x P array besides the caller's H;
    ``overwrite_h=True`` (H is a float64 array the caller no longer needs) lets
    the null-direction curvature go into H itself.
    """
    given = np.asarray(H, dtype=np.float64)
    in_place = overwrite_h and given is H and null_directions is not None \
        and null_directions.shape[1] > 0
    if in_place:  # H holds the curvature from here on: the fallback starts from it
        H = _null_curvature_into(given, null_directions)
        null_directions = None
    else:
        H = add_null_curvature(given, null_directions)
    if not np.all(np.isfinite(H)):
        raise ValueError(
            "The Hessian has NaN or infinite entries: the features are too large for float64 "
            "(|x|^2 overflows above about 1e154); rescale X, e.g. with StandardScaler."
        )
    if damping != "auto":
        damping = float(damping)
        if damping < 0:
            raise ValueError(f"damping must be >= 0 or 'auto', got {damping}.")
        try:
            return cho_factor(_plus_diagonal(H, damping, H is not given), lower=True,
                              overwrite_a=True), damping
        except np.linalg.LinAlgError:
            raise ValueError(
                f"The Hessian plus damping={damping} is not positive definite "
                "(non-convex model or separable data); use damping='auto' or a larger value."
            ) from None
    try:
        return cho_factor(H, lower=True, overwrite_a=H is not given), 0.0
    except np.linalg.LinAlgError:
        H = add_null_curvature(given, null_directions)  # the failed factorisation wrote on it
        eig = eigvalsh(H)
        damping = float(-eig[0] + 1e-8 * max(1.0, abs(eig[-1])))
        return cho_factor(_plus_diagonal(H, damping, H is not given), lower=True,
                          overwrite_a=True), damping


def _plus_diagonal(H, value, in_place=False):
    """H + value * I (no P x P identity built); a new array unless ``in_place``."""
    out = H if in_place else H.copy()
    out[np.diag_indices_from(out)] += value
    return out


def solve_factored(factor, b):
    return cho_solve(factor, b)


#: CG iterations at most when ``max_iter`` is None (each one is an HVP: a pass
#: over the training rows). Exact HVPs converge in at most P steps in exact
#: arithmetic; the cap bounds a net's solve whatever its size.
CG_MAX_ITER = 500


def conjugate_gradient(matvec, b, *, tol=1e-10, max_iter=None):
    """Solve ``A x = b`` for symmetric positive (semi-)definite ``A`` given as ``matvec``.

    Started at 0, CG stays in the Krylov space of b, so for a consistent
    singular system it returns the minimum-norm solution. Stops when the
    relative residual ``||b - A x|| / ||b||`` reaches ``tol``, after
    ``max_iter`` iterations (None: ``min(10 * len(b), CG_MAX_ITER)``) or at a
    direction of non-positive curvature (A not positive definite there).
    Returns ``(x, n_iter, relative_residual)``.
    """
    max_iter = max_iter or min(10 * b.shape[0], CG_MAX_ITER)
    x = b * 0
    r = b.clone() if hasattr(b, "clone") else b.copy()
    p = r.clone() if hasattr(r, "clone") else r.copy()
    rs = r @ r
    b_norm2 = float(rs)
    if b_norm2 == 0.0:
        return x, 0, 0.0
    threshold = (tol ** 2) * b_norm2
    for it in range(1, max_iter + 1):
        Ap = matvec(p)
        curvature = p @ Ap
        if float(curvature) <= 0.0:
            return x, it, float(rs / b_norm2) ** 0.5
        alpha = rs / curvature
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = r @ r
        if rs_new <= threshold:
            return x, it, float(rs_new / b_norm2) ** 0.5
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x, max_iter, float(rs / b_norm2) ** 0.5


def lissa(matvec, b, *, scale, n_iter=1000, tol=1e-8):
    """LiSSA: ``x <- b + x - A x / scale``, converging to ``scale * A^-1 b``'s fixed point.

    Needs ``scale`` above the largest eigenvalue of ``A``. Returns ``(x, n_iter)``.
    """
    x = b / scale
    for it in range(1, n_iter + 1):
        x_new = b / scale + x - matvec(x) / scale
        done = float(((x_new - x) @ (x_new - x)) ** 0.5) <= tol * float((x_new @ x_new) ** 0.5)
        x = x_new
        if done:
            return x, it
    return x, n_iter
