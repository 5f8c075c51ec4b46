"""cplx: the existing ops whose backward is right for complex tensors as it stands, marked
``complex_grad`` (``autograd.Function``): linear maps whose adjoint is their transpose (reshaping,
indexing, joining, padding, summing, rolling, flipping), and the unary functions whose backward
multiplies by conj(f'(z)) (``UnaryFunction``). Ops with their own complex formulas (Mul, Div,
Pow, MatMul, Einsum, Cast, ...) set the flag in their class body."""
from tinymm.ops import elementwise, index, inplace, layout, reduce, scan, shape

for _cls in (shape.Reshape, shape.Permute, shape.Expand, shape.Concat, shape.Stack, shape.Split, shape.Pad,
             shape.SumToSize, index.GetItem, index.IndexPutZeros, inplace.SetItem, inplace.SetView, layout.Diagonal, layout.Unfold,
             index.Where, index.MaskedFill, index.Gather, layout.Tril, layout.Triu, scan.Cumsum,
             reduce.Sum, reduce.Mean, layout.Flip, layout.Roll, layout.Repeat,
             elementwise.Exp, elementwise.Log, elementwise.Sqrt, elementwise.Tanh):
    _cls.complex_grad = True
