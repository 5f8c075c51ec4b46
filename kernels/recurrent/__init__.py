"""Recurrent layers (RNN tanh/relu, LSTM, GRU): one layer, one direction, a whole sequence.

    forward(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr=None, lengths=None, reverse=False,
            impl=None, keep=True)            -> (y, h_n, c_n, saved)
    backward(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, reverse, saved,
             dy, dh_n, dc_n, impl=None)      -> (dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, dw_hr)

    mode "RNN_TANH", "RNN_RELU", "LSTM" or "GRU" (PyTorch's names); x (T, B, I) time-major,
    C-contiguous, float32 or float64; h0 (B, P); c0 (B, H) for LSTM, else None; biases may be
    None (their gradients are then None); w_hr (P, H) for an LSTM with proj_size; lengths a
    host int64 array (B,) with values in [1, T], or None.

    forward_bidirectional(mode, x, states, weights, lengths=None, impl=None, keep=True)
    backward_bidirectional(mode, x, states, weights, lengths, saved, dys, dh_ns, dc_ns, impl=None)

    both directions of one layer (direction 1 is the reverse one): ``states`` is
    [(h0, c0)] * 2, ``weights`` [(w_ih, w_hh, b_ih, b_hh, w_hr)] * 2, and the other arguments
    and results are lists of the two directions' (results are those of forward/backward).
    On the CPU the two directions run at once on two threads (when Numba may use two), so that
    both cores have work.

The math, the shapes, the variable-length rules and what ``saved`` holds are in
``reference.py``'s docstring. Where things are:

    reference.py  plain NumPy, step by step: the specification
    cpu.py        the time loop in Numba, range by range: fused gates, BLAS for the big
                  products (on a helper thread, the second core, while the loop runs)
    _packed_gemm.py  the LSTM's per-step products against weights packed once per call
    cuda.py       numba.cuda fused gate kernels between cuBLAS GEMMs (imported when first used)

Dispatch is by array type (CuPy -> "cuda", anything else -> "cpu"); ``impl`` picks one for
tests. ``saved`` has the same layout in every implementation. ``keep=False`` says no backward
will follow: the CPU kernel then works in reused scratch arrays and returns ``saved`` None
(the other implementations ignore it). Inputs are trusted: the public
layer (``tinymm.nn.functional.recurrent``) checks them.
"""
from .._common import resolve_impl
from .reference import GATES, reference_backward, reference_forward, step_order

__all__ = ["forward", "backward", "forward_bidirectional", "backward_bidirectional",
           "reference_forward", "reference_backward", "step_order", "GATES"]


def forward(mode, x, h0, c0, w_ih, w_hh, b_ih=None, b_hh=None, w_hr=None, lengths=None,
            reverse=False, impl=None, keep=True):
    """One layer, one direction over the whole sequence; see the module docstring."""
    impl = resolve_impl(impl, x, "recurrent")
    if impl == "reference":
        run = reference_forward
    elif impl == "cpu":
        from .cpu import cpu_forward

        return cpu_forward(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, reverse, keep=keep)
    else:
        from .cuda import cuda_forward as run
    return run(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, reverse)


def backward(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, reverse, saved,
             dy, dh_n, dc_n, impl=None):
    """Backpropagation through time for ``forward``; see the module docstring."""
    impl = resolve_impl(impl, x, "recurrent")
    if impl == "reference":
        run = reference_backward
    elif impl == "cpu":
        from .cpu import cpu_backward as run
    else:
        from .cuda import cuda_backward as run
    return run(mode, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, lengths, reverse, saved,
               dy, dh_n, dc_n)


def forward_bidirectional(mode, x, states, weights, lengths=None, impl=None, keep=True):
    """Both directions of one layer; see the module docstring. Returns a list of two results."""
    impl = resolve_impl(impl, x, "recurrent")
    if impl == "cpu":
        from .cpu import cpu_forward_pair

        return cpu_forward_pair(mode, x, states, weights, lengths, keep=keep)
    return [forward(mode, x, *states[d], *weights[d], lengths, bool(d), impl=impl) for d in range(2)]


def backward_bidirectional(mode, x, states, weights, lengths, saved, dys, dh_ns, dc_ns, impl=None):
    """BPTT of ``forward_bidirectional``. Returns a list of two gradient tuples."""
    impl = resolve_impl(impl, x, "recurrent")
    if impl == "cpu":
        from .cpu import cpu_backward_pair

        return cpu_backward_pair(mode, x, states, weights, lengths, saved, dys, dh_ns, dc_ns)
    return [backward(mode, x, *states[d], *weights[d], lengths, bool(d), saved[d], dys[d], dh_ns[d],
                     dc_ns[d], impl=impl) for d in range(2)]
