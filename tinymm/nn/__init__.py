"""Floor 5: ``Module``, ``Parameter`` and the layers, with PyTorch's names."""
from tinymm.nn import functional, init, utils  # noqa: F401
from tinymm.nn.containers import ModuleDict, ModuleList, Sequential  # noqa: F401
from tinymm.nn.layers import (  # noqa: F401
    GELU,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LayerNorm,
    Linear,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
)
from tinymm.nn.attention import MultiheadAttention  # noqa: F401
from tinymm.nn.batchnorm import BatchNorm1d, BatchNorm2d  # noqa: F401
from tinymm.nn.conv import Conv1d, Conv2d  # noqa: F401
from tinymm.nn.module import Module  # noqa: F401
from tinymm.nn.parameter import Parameter  # noqa: F401
from tinymm.nn.pooling import (  # noqa: F401
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
)
from tinymm.nn.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell  # noqa: F401
from tinymm.nn.positional import LearnedPositionalEmbedding, PatchEmbedding, SinusoidalPositionalEncoding  # noqa: F401
from tinymm.nn.transformer import TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer  # noqa: F401
