"""``torch.nn.modules`` and its submodules (``torch.nn.modules.batchnorm``, ``.conv``, ``.utils``,
...): the same classes as ``tinymm.nn`` under the module paths PyTorch code imports them from,
private base classes included (``from torch.nn.modules.batchnorm import _BatchNorm`` to freeze
every batch norm, ``isinstance(m, nn.modules.conv._ConvNd)``, ``from torch.nn.modules.utils import
_pair``). Each submodule holds what PyTorch's does, where tinymm has it; the classes live where
they always did (``tinymm/nn/*.py``), so these are the same objects, not copies."""
from __future__ import annotations

import sys
import types

import tinymm.nn.activations as _nn_activations
import tinymm.nn.adaptive_softmax as _nn_adaptive_softmax
import tinymm.nn.attention as _nn_attention
import tinymm.nn.batchnorm as _nn_batchnorm
import tinymm.nn.containers as _nn_containers
import tinymm.nn.conv as _nn_conv
import tinymm.nn.dropout as _nn_dropout
import tinymm.nn.fractional_pool as _nn_fractional_pool
import tinymm.nn.layers as _nn_layers
import tinymm.nn.lazy as _nn_lazy
import tinymm.nn.loss as _nn_loss
import tinymm.nn.module as _nn_module
import tinymm.nn.normalization as _nn_normalization
import tinymm.nn.pooling as _nn_pooling
import tinymm.nn.rnn as _nn_rnn
import tinymm.nn.transformer as _nn_transformer
import tinymm.nn.modules.batchnorm as _batchnorm_paths
import tinymm.nn.modules.conv as _conv_paths
import tinymm.nn.modules.loss as _loss_paths
import tinymm.nn.modules.module as _module_paths
from tinymm.nn.modules import utils  # noqa: F401

# submodules that are files here (the private bases under PyTorch's names); the table's other
# names for them are added below
_FILE_SUBMODULES = {"batchnorm": _batchnorm_paths, "conv": _conv_paths, "loss": _loss_paths, "module": _module_paths}

# PyTorch's submodule -> its class names tinymm has, and the tinymm file that defines each
_TABLE = {
    "adaptive": "AdaptiveLogSoftmaxWithLoss",
    "activation": ("Threshold ReLU RReLU Hardtanh ReLU6 Sigmoid Hardsigmoid Tanh SiLU Mish Hardswish ELU CELU SELU "
                   "GLU GELU Hardshrink LeakyReLU LogSigmoid Softplus Softshrink MultiheadAttention PReLU Softsign "
                   "Tanhshrink Softmin Softmax Softmax2d LogSoftmax"),
    "batchnorm": "_BatchNorm BatchNorm1d LazyBatchNorm1d BatchNorm2d LazyBatchNorm2d BatchNorm3d LazyBatchNorm3d SyncBatchNorm",
    "channelshuffle": "ChannelShuffle",
    "container": "Sequential ModuleList ModuleDict ParameterList ParameterDict",
    "conv": ("_ConvNd Conv1d Conv2d Conv3d _ConvTransposeNd ConvTranspose1d ConvTranspose2d ConvTranspose3d "
             "LazyConv1d LazyConv2d LazyConv3d LazyConvTranspose1d LazyConvTranspose2d LazyConvTranspose3d"),
    "distance": "PairwiseDistance CosineSimilarity",
    "dropout": "_DropoutNd Dropout Dropout1d Dropout2d Dropout3d AlphaDropout FeatureAlphaDropout",
    "flatten": "Flatten Unflatten",
    "fold": "Fold Unfold",
    "instancenorm": ("_InstanceNorm InstanceNorm1d LazyInstanceNorm1d InstanceNorm2d LazyInstanceNorm2d InstanceNorm3d "
                     "LazyInstanceNorm3d"),
    "linear": "Identity Linear Bilinear LazyLinear NonDynamicallyQuantizableLinear",
    "loss": ("_Loss L1Loss NLLLoss PoissonNLLLoss GaussianNLLLoss KLDivLoss MSELoss BCELoss BCEWithLogitsLoss "
             "HingeEmbeddingLoss MultiLabelMarginLoss SmoothL1Loss HuberLoss SoftMarginLoss CrossEntropyLoss "
             "MultiLabelSoftMarginLoss CosineEmbeddingLoss MarginRankingLoss MultiMarginLoss TripletMarginLoss "
             "TripletMarginWithDistanceLoss CTCLoss NLLLoss2d"),
    "module": "Module",
    "normalization": "LocalResponseNorm LayerNorm GroupNorm RMSNorm",
    "padding": ("CircularPad1d CircularPad2d CircularPad3d ConstantPad1d ConstantPad2d ConstantPad3d ReflectionPad1d "
                "ReflectionPad2d ReflectionPad3d ReplicationPad1d ReplicationPad2d ReplicationPad3d ZeroPad1d "
                "ZeroPad2d ZeroPad3d"),
    "pixelshuffle": "PixelShuffle PixelUnshuffle",
    "pooling": ("_MaxPoolNd MaxPool1d MaxPool2d MaxPool3d _MaxUnpoolNd MaxUnpool1d MaxUnpool2d MaxUnpool3d _AvgPoolNd "
                "AvgPool1d AvgPool2d AvgPool3d _LPPoolNd LPPool1d LPPool2d LPPool3d _AdaptiveMaxPoolNd "
                "AdaptiveMaxPool1d AdaptiveMaxPool2d AdaptiveMaxPool3d AdaptiveAvgPool1d AdaptiveAvgPool2d "
                "AdaptiveAvgPool3d FractionalMaxPool2d FractionalMaxPool3d"),
    "rnn": "RNNBase RNN LSTM GRU RNNCellBase RNNCell LSTMCell GRUCell",
    "sparse": "Embedding EmbeddingBag",
    "transformer": "Transformer TransformerEncoder TransformerDecoder TransformerEncoderLayer TransformerDecoderLayer",
    "upsampling": "Upsample UpsamplingNearest2d UpsamplingBilinear2d",
}
_FILES = (_nn_activations, _nn_adaptive_softmax, _nn_fractional_pool, _nn_attention, _nn_batchnorm, _nn_containers, _nn_conv, _nn_dropout, _nn_layers, _nn_lazy,
          _nn_loss, _nn_module, _nn_normalization, _nn_pooling, _nn_rnn, _nn_transformer)


def _find(name: str):
    for f in _FILES:
        if hasattr(f, name):
            return getattr(f, name)
    raise AttributeError(f"tinymm.nn.modules: no class {name}")


for _sub, _names in _TABLE.items():
    _mod = _FILE_SUBMODULES.get(_sub)
    if _mod is None:
        _mod = types.ModuleType(f"{__name__}.{_sub}", f"torch.nn.modules.{_sub}'s classes (tinymm.nn.modules)")
        sys.modules[_mod.__name__] = _mod
    for _n in _names.split():
        if not hasattr(_mod, _n):
            setattr(_mod, _n, _find(_n))
    globals()[_sub] = _mod
    for _n in _names.split():
        if not _n.startswith("_"):
            globals()[_n] = getattr(_mod, _n)

del _sub, _names, _mod, _n
