"""2-D convolution kernels (1-D is 2-D with H = 1): forward and backward, PyTorch's ``conv2d``.

    forward(x, w, bias=None, stride, padding, dilation, groups, impl=None)            -> y
    backward(x, w, dy, stride, padding, dilation, groups, has_bias=True,
             need_input=True, need_weight=True, impl=None)                          -> (dx, dw, db)

    x (B, C, H, W), w (O, C / groups, kh, kw), bias (O,) or None, y and dy (B, O, Ho, Wo);
    one dtype (float32 or float64), C-contiguous. stride and dilation are pairs (sh, sw),
    (dh, dw); padding is ((top, bottom), (left, right)), so that PyTorch's asymmetric
    ``padding="same"`` for even kernels is expressible (the public function resolves "same",
    "valid" and ints). dx, dw, db are None when not asked for.

Forward saves nothing: backward takes x and w again and rebuilds what it needs.

Where things are:

    reference.py  the convolution sum in plain NumPy (or CuPy): the specification
    cpu.py        Numba threads: im2col tiles + BLAS per tile, or a direct loop for depthwise;
                  first, where they apply, the kernels of amx.py
    amx.py        stride-1 convolutions and both gradients on Intel AMX tiles (float32
                  accuracy from bfloat16 pieces, as the attention kernels' ``_amx.py``)
    cuda.py       numba.cuda im2col / col2im with cuBLAS (cupy.matmul) between them

The kernels trust their inputs: ``tinymm.nn.functional.conv1d/conv2d`` checks them once.
``impl``: None picks by array type (CuPy -> "cuda", else "cpu"); tests name "reference",
"cpu" or "cuda" (the CUDA version also takes NumPy arrays under Numba's CUDA simulator).
"""
from .._common import resolve_impl
from .reference import output_size, reference_backward, reference_forward

__all__ = ["forward", "backward", "output_size", "reference_forward", "reference_backward"]


def forward(x, w, bias=None, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1,
            impl=None):
    """y = conv2d(x, w) + bias; see the module docstring."""
    impl = resolve_impl(impl, x, "conv")
    if impl == "reference":
        return reference_forward(x, w, bias, stride, padding, dilation, groups)
    if impl == "cuda":
        from .cuda import cuda_forward as run
    else:
        from .cpu import cpu_forward as run
    return run(x, w, bias, stride, padding, dilation, groups)


def backward(x, w, dy, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1,
             has_bias=True, need_input=True, need_weight=True, impl=None):
    """(dx, dw, db) of conv2d given dy; a gradient not asked for is None."""
    impl = resolve_impl(impl, x, "conv")
    if impl == "reference":
        dx, dw, db = reference_backward(x, w, dy, stride, padding, dilation, groups, has_bias)
        return (dx if need_input else None), (dw if need_weight else None), db
    if impl == "cuda":
        from .cuda import cuda_backward as run
    else:
        from .cpu import cpu_backward as run
    return run(x, w, dy, stride, padding, dilation, groups, has_bias, need_input, need_weight)
