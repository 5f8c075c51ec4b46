"""L-BFGS (limited-memory BFGS) with PyTorch's algorithm, arguments and defaults.

``step(closure)`` runs up to ``max_iter`` quasi-Newton iterations on all parameters seen as one
flat vector: the search direction is −H·g with H the inverse-Hessian estimate built from the
last ``history_size`` pairs (s = step taken, y = change of gradient) by the two-loop recursion,
scaled by γ = sᵀy / yᵀy; each iteration steps ``lr`` along it (the first one
min(1, 1/‖g‖₁)·lr), or as far as a strong-Wolfe line search (``line_search_fn="strong_wolfe"``,
cubic interpolation in a bracketing-then-zoom search) decides. It stops early when the gradient
or the change of loss or step falls under the tolerances. The closure re-evaluates the model
and returns the loss; it is called several times per step.
"""
from __future__ import annotations

import numpy as np

from tinymm.autograd import enable_grad
from tinymm.optim.optimizer import Optimizer, check_number, hyper, state_array
from tinymm.tensor import Tensor


def _cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through (x1, f1, g1) and (x2, f2, g2), clamped to ``bounds``
    (default: between x1 and x2); the midpoint when the cubic has no real minimiser."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    if d2_square >= 0:
        d2 = np.sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return float(min(max(min_pos, lo), hi))
    return (lo + hi) / 2.0


def _strong_wolfe(evaluate, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    """A step size t along d satisfying the strong Wolfe conditions (sufficient decrease c1,
    curvature c2): grow t until a bracket holds a minimum, then zoom in by cubic interpolation.
    ``evaluate(t)`` returns (loss, flat gradient) at x + t·d. Returns (f, g, t, evaluations)."""
    d_norm = float(np.abs(d).max())
    f_new, g_new = evaluate(t)
    evals = 1
    gtd_new = float(g_new @ d)
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    ls_iter = 0
    bracket = bracket_f = bracket_g = bracket_gtd = None
    while ls_iter < max_ls:
        if f_new > f + c1 * t * gtd or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g = [t], [f_new], [g_new]
            done = True
            break
        if gtd_new >= 0:  # the slope turned: a minimum lies between t_prev and t
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new.copy()], [gtd_prev, gtd_new]
            break
        # extrapolate: the cubic's minimiser beyond t, between 1.01·t and 10·t
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                               bounds=(t + 0.01 * (t - t_prev), t * 10))
        t_prev, f_prev, g_prev, gtd_prev = tmp, f_new, g_new.copy(), gtd_new
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0.0, t], [f, f_new], [g, g_new]
    insufficient_progress = False
    low, high = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0], bracket[1], bracket_f[1], bracket_gtd[1])
        # keep t away from the bracket's ends, unless it has been making progress
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insufficient_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) else min(bracket) + eps
                insufficient_progress = False
            else:
                insufficient_progress = True
        else:
            insufficient_progress = False
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
        if f_new > f + c1 * t * gtd or f_new >= bracket_f[low]:
            bracket[high], bracket_f[high], bracket_g[high], bracket_gtd[high] = t, f_new, g_new.copy(), gtd_new
            low, high = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high] - bracket[low]) >= 0:
                bracket[high], bracket_f[high] = bracket[low], bracket_f[low]
                bracket_g[high], bracket_gtd[high] = bracket_g[low], bracket_gtd[low]
            bracket[low], bracket_f[low], bracket_g[low], bracket_gtd[low] = t, f_new, g_new.copy(), gtd_new
    return bracket_f[low], bracket_g[low], bracket[low], evals


class LBFGS(Optimizer):
    _complex_params = False  # its flat vectors and line search are written for real parameters
    _state_shaped_like_params = False  # flat d, prev_flat_grad over all parameters, kept on the first

    def __init__(self, params, lr: float = 1, max_iter: int = 20, max_eval=None, tolerance_grad: float = 1e-7,
                 tolerance_change: float = 1e-9, history_size: int = 100, line_search_fn=None):
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change, history_size=history_size,
                                      line_search_fn=line_search_fn))
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]

    def _check_hyperparameters(self, group):
        check_number("LBFGS", "lr", group["lr"], "learning rate")
        if group["line_search_fn"] not in (None, "strong_wolfe"):
            raise ValueError(f"LBFGS: only 'strong_wolfe' is supported as line_search_fn, got {group['line_search_fn']!r}")

    # ------------------------------------------------------------------ the flat view
    def _flat_grad(self):
        parts = [np.zeros_like(p._data).reshape(-1) if p.grad is None else
                 (p.grad.to_dense() if getattr(p.grad, "is_sparse", False) else p.grad)._data.reshape(-1)
                 for p in self._params]  # (a sparse gradient as its dense equal, as PyTorch's LBFGS)
        return np.concatenate(parts)

    def _add(self, t, d):
        """p += t·d, d sliced per parameter."""
        offset = 0
        for p in self._params:
            n = p._data.size
            p._data += (t * d[offset:offset + n]).reshape(p.shape).astype(p.dtype, copy=False)
            offset += n

    def _evaluate(self, closure, t, d):
        """(loss, flat gradient) at x + t·d, the parameters restored to x after."""
        saved = [p._data.copy() for p in self._params]
        self._add(t, d)
        with enable_grad():
            loss = float(closure())
        g = self._flat_grad()
        for p, s in zip(self._params, saved):
            p._data[...] = s
        return loss, g

    # ------------------------------------------------------------------ the step
    def step(self, closure=None):
        """Up to ``max_iter`` iterations. The state (on the first parameter, as PyTorch's) holds
        what PyTorch's does, as Tensors: ``d``, ``prev_flat_grad`` (flat, the parameters' dtype
        and device), the history lists ``old_dirs``, ``old_stps`` and ``ro`` (0-dim), ``al``,
        ``H_diag`` (0-dim once curvature was seen, 1 before), ``t``, ``prev_loss``,
        ``func_evals``, ``n_iter``. The curvature scalars are computed in the parameters' dtype,
        as PyTorch's 0-dim tensors are."""
        if closure is None:
            raise RuntimeError("LBFGS: step() requires a closure that re-evaluates the model and returns the loss")
        group = self.param_groups[0]
        lr, max_iter, max_eval = hyper(group["lr"]), group["max_iter"], group["max_eval"]
        tolerance_grad, tolerance_change = group["tolerance_grad"], group["tolerance_change"]
        history_size, line_search_fn = group["history_size"], group["line_search_fn"]
        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        with enable_grad():
            orig_loss = closure()
        loss = float(orig_loss)
        current_evals = 1
        state["func_evals"] += 1
        flat_grad = self._flat_grad()
        if np.abs(flat_grad).max() <= tolerance_grad:
            return orig_loss
        d, t = state_array(state.get("d")), _number(state.get("t"))
        old_dirs, old_stps, ro = state.get("old_dirs"), state.get("old_stps"), state.get("ro")
        H_diag, prev_flat_grad, prev_loss = state.get("H_diag"), state_array(state.get("prev_flat_grad")), state.get("prev_loss")
        if H_diag is not None and not isinstance(H_diag, int):
            H_diag = _number(H_diag)
        n_iter = 0
        while n_iter < max_iter:
            n_iter += 1
            state["n_iter"] += 1
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs, old_stps, ro, H_diag = [], [], [], 1
            else:
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = y @ s  # a scalar of the parameters' dtype, as PyTorch's 0-dim tensor
                if ys > 1e-10:  # keep the pair only when the curvature is positive
                    if len(old_dirs) == history_size:
                        old_dirs.pop(0), old_stps.pop(0), ro.pop(0)
                    old_dirs.append(Tensor._wrap(y)), old_stps.append(Tensor._wrap(s))
                    ro.append(_scalar(1.0 / ys))
                    H_diag = ys / (y @ y)
                # two-loop recursion: q ← −g, then d = H·q
                if "al" not in state:
                    state["al"] = [None] * history_size
                al = state["al"]
                q = -flat_grad
                for i in range(len(old_dirs) - 1, -1, -1):
                    a_i = (old_stps[i]._data @ q) * _number(ro[i])
                    al[i] = _scalar(a_i)
                    q -= a_i * old_dirs[i]._data
                d = r = q * H_diag
                for i in range(len(old_dirs)):
                    be_i = (old_dirs[i]._data @ r) * _number(ro[i])
                    r += (_number(al[i]) - be_i) * old_stps[i]._data
            prev_flat_grad = flat_grad.copy()
            prev_loss = loss
            if state["n_iter"] == 1:
                inv = 1.0 / np.abs(flat_grad).sum()  # PyTorch's min(1.0, tensor) * lr: a tensor when < 1
                t = min(1.0, float(inv)) * lr if inv >= 1.0 else inv * flat_grad.dtype.type(lr)
            else:
                t = lr
            gtd = float(flat_grad @ d)
            if gtd > -tolerance_change:  # not a descent direction
                break
            evals = 0
            if line_search_fn == "strong_wolfe":
                loss, flat_grad, t, evals = _strong_wolfe(lambda step: self._evaluate(closure, step, d), float(t), d,
                                                          loss, flat_grad, gtd, max_ls=max_eval - current_evals)
                self._add(t, d)
                opt_cond = np.abs(flat_grad).max() <= tolerance_grad
            else:
                self._add(t, d)
                opt_cond = False
                if n_iter != max_iter:
                    with enable_grad():
                        loss = float(closure())
                    flat_grad = self._flat_grad()
                    opt_cond = np.abs(flat_grad).max() <= tolerance_grad
                    evals = 1
            current_evals += evals
            state["func_evals"] += evals
            if n_iter == max_iter or current_evals >= max_eval or opt_cond:
                break
            if np.abs(d * t).max() <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
                break
        state.update(d=Tensor._wrap(d), t=_kept(t), old_dirs=old_dirs, old_stps=old_stps, ro=ro, H_diag=_kept(H_diag),
                     prev_flat_grad=Tensor._wrap(prev_flat_grad), prev_loss=prev_loss)
        return orig_loss


def _scalar(x) -> Tensor:
    """A NumPy (or CuPy 0-dim) scalar as a 0-dim CPU Tensor of its dtype (PyTorch keeps these as
    0-dim tensors)."""
    return Tensor._wrap(np.array(x.item(), dtype=x.dtype))


def _kept(x):
    """``t`` or ``H_diag`` as stored: a scalar of an array dtype as a 0-dim Tensor, a number as is."""
    return _scalar(x) if hasattr(x, "dtype") else x


def _number(x):
    """A scalar state entry (0-dim Tensor or array, or a number) as a scalar of its dtype."""
    if isinstance(x, Tensor):
        x = x._data
    return x[()] if isinstance(x, np.ndarray) else x
