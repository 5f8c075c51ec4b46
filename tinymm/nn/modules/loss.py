"""``torch.nn.modules.loss``: ``_Loss`` (the base of every loss module: ``reduction``, or the
legacy ``size_average``/``reduce``), ``_WeightedLoss`` (the losses with a class ``weight``
buffer) and the loss modules, all tinymm's own classes."""
from tinymm.nn.loss import (  # noqa: F401
    BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, CrossEntropyLoss, CTCLoss, GaussianNLLLoss, HingeEmbeddingLoss,
    HuberLoss, KLDivLoss, L1Loss, MarginRankingLoss, MSELoss, MultiLabelMarginLoss, MultiLabelSoftMarginLoss,
    MultiMarginLoss, NLLLoss, PoissonNLLLoss, SmoothL1Loss, SoftMarginLoss, TripletMarginLoss,
    TripletMarginWithDistanceLoss)
from tinymm.nn.loss import LossBase as _Loss  # noqa: F401
from tinymm.nn.loss import WeightedLossBase as _WeightedLoss  # noqa: F401
