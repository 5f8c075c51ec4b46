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
from tinymm.nn.activations import (  # noqa: F401
    CELU,
    ELU,
    GLU,
    SELU,
    CircularPad1d,
    CircularPad2d,
    ConstantPad1d,
    ConstantPad2d,
    Hardsigmoid,
    Hardswish,
    Hardtanh,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    Mish,
    PReLU,
    ReflectionPad1d,
    ReflectionPad2d,
    ReLU6,
    ReplicationPad1d,
    ReplicationPad2d,
    Softmin,
    Softplus,
    Softsign,
    Tanhshrink,
    Threshold,
    Upsample,
    ZeroPad2d,
)
from tinymm.nn.attention import MultiheadAttention  # noqa: F401
from tinymm.nn.batchnorm import BatchNorm1d, BatchNorm2d  # noqa: F401
from tinymm.nn.conv import Conv1d, Conv2d  # noqa: F401
from tinymm.nn.loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss  # noqa: F401
from tinymm.nn.module import Module  # noqa: F401
from tinymm.nn import parallel  # noqa: F401,E402  (nn.parallel.DistributedDataParallel)
from tinymm.nn.parallel import DataParallel  # noqa: F401,E402
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

# opsb: more layers, norms, losses, pooling, transposed convolution, containers, decoder
from tinymm.nn.containers import ParameterDict, ParameterList  # noqa: F401
from tinymm.nn.conv import Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d  # noqa: F401
from tinymm.nn.dropout import AlphaDropout, Dropout1d, Dropout2d, Dropout3d, FeatureAlphaDropout  # noqa: F401
from tinymm.nn.layers import (  # noqa: F401
    Bilinear,
    ChannelShuffle,
    CosineSimilarity,
    EmbeddingBag,
    Fold,
    PairwiseDistance,
    PixelShuffle,
    PixelUnshuffle,
    Softmax2d,
    Unflatten,
    Unfold,
)
from tinymm.nn.loss import (  # noqa: F401
    CosineEmbeddingLoss,
    GaussianNLLLoss,
    HingeEmbeddingLoss,
    HuberLoss,
    KLDivLoss,
    MarginRankingLoss,
    MultiLabelSoftMarginLoss,
    PoissonNLLLoss,
    SmoothL1Loss,
    SoftMarginLoss,
    TripletMarginLoss,
)
from tinymm.nn.normalization import (  # noqa: F401
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    LocalResponseNorm,
    RMSNorm,
)
from tinymm.nn.pooling import AdaptiveMaxPool1d, AdaptiveMaxPool2d  # noqa: F401
from tinymm.nn.transformer import Transformer, TransformerDecoder  # noqa: F401
from tinymm.nn.activations import (  # noqa: F401
    CircularPad3d,
    ConstantPad3d,
    Hardshrink,
    ReflectionPad3d,
    ReplicationPad3d,
    RReLU,
    Softshrink,
    UpsamplingBilinear2d,
    UpsamplingNearest2d,
    ZeroPad1d,
    ZeroPad3d,
)
from tinymm.nn.batchnorm import BatchNorm3d, SyncBatchNorm  # noqa: F401
from tinymm.nn.loss import CTCLoss, MultiLabelMarginLoss, MultiMarginLoss, TripletMarginWithDistanceLoss  # noqa: F401
from tinymm.nn.pooling import (  # noqa: F401
    AdaptiveAvgPool3d,
    AdaptiveMaxPool3d,
    AvgPool3d,
    LPPool1d,
    LPPool2d,
    MaxPool3d,
    MaxUnpool1d,
    MaxUnpool2d,
)
from tinymm.nn.lazy import (  # noqa: F401
    LazyBatchNorm1d,
    LazyBatchNorm2d,
    LazyBatchNorm3d,
    LazyConv1d,
    LazyConv2d,
    LazyConv3d,
    LazyConvTranspose1d,
    LazyConvTranspose2d,
    LazyConvTranspose3d,
    LazyInstanceNorm1d,
    LazyInstanceNorm2d,
    LazyInstanceNorm3d,
    LazyLinear,
)

# opse: RNN base classes, nn.Buffer, the lazy layers' UninitializedParameter, LPPool3d, MaxUnpool3d
from tinymm.nn.parameter_more import Buffer, UninitializedParameter  # noqa: F401,E402
from tinymm.nn.pooling import LPPool3d, MaxUnpool3d  # noqa: F401,E402
from tinymm.nn.rnn import RNNBase, RNNCellBase  # noqa: F401,E402

# main (7th session): fractional max pooling, the adaptive softmax, NLLLoss2d
from tinymm.nn.adaptive_softmax import AdaptiveLogSoftmaxWithLoss  # noqa: F401,E402
from tinymm.nn.fractional_pool import FractionalMaxPool2d, FractionalMaxPool3d  # noqa: F401,E402
from tinymm.nn.loss import NLLLoss2d  # noqa: F401,E402

# shims: torch.nn.modules (internal paths: batchnorm._BatchNorm, loss._Loss, conv._ConvNd, utils._pair, ...)
from tinymm.nn import modules  # noqa: F401,E402
from tinymm.nn import compiled  # noqa: F401,E402  (torch.compile(module) returns its OptimizedModule)
