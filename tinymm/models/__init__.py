"""Floor 7: task models, fusion heads, and ``save_pretrained`` / ``from_pretrained``.

    rec = tinymm.models.recipe("vqa")
    model = tinymm.models.build("vqa", "relational", rec)   # (task, name) → model
    model.save_pretrained("runs/vqa/model"); VQAModel.from_pretrained("runs/vqa/model")

Encoders, one file each, usable alone or inside the task models: ``ResNet`` and ``ViT``
(images), ``AudioEncoder`` (log-mel → conv1d → GRU/Transformer), ``VideoEncoder`` (frame CNN →
GRU/LSTM/attention); ``AVQAModel`` (``av_qa``) and ``VideoQAModel`` (``video_qa``) fuse them.

Pretrained BERT-style encoders load from Hugging Face files (``BertModel``,
``SentenceEncoder.from_pretrained("all-MiniLM-L6-v2")``).

Every task model follows the contract with the Trainer: ``model(batch)`` takes the dict the
task's collate yields (arrays as Tensors on the model's device) and returns logits.
"""
from tinymm.models.bert import BertCheckpointError, BertConfig, BertModel  # noqa: F401
from tinymm.models.fusion import HEADS  # noqa: F401
from tinymm.models.image import ImageClassifier  # noqa: F401
from tinymm.models.pretrained import MODEL_CLASSES, from_pretrained, register, save_pretrained  # noqa: F401
from tinymm.models.registry import (  # noqa: F401
    BASELINES,
    DEFAULT_MODEL,
    MODELS,
    Recipe,
    UnknownModelError,
    build,
    check,
    recipe,
)
from tinymm.models.sentence_encoder import PretrainedNotFoundError, SentenceEncoder, resolve_pretrained  # noqa: F401
from tinymm.models.vqa import VQAModel  # noqa: F401
# --- text: Transformer text encoder, masked-token pretraining, text classifier
from tinymm.models.mlm import MaskedLanguageModel, MLMCollate, mask_tokens, mlm_loss, world_corpus  # noqa: F401
from tinymm.models.text_classifier import TextClassifier  # noqa: F401
from tinymm.models.text_transformer import TextTransformer, TextTransformerConfig  # noqa: F401
# encoders and the audio/video task models
from tinymm.models.audio import AudioEncoder  # noqa: F401
from tinymm.models.av_qa import AVQAModel  # noqa: F401
from tinymm.models.registry import preset_config  # noqa: F401
from tinymm.models.resnet import ResNet  # noqa: F401
from tinymm.models.video import VideoEncoder  # noqa: F401
from tinymm.models.video_qa import VideoQAModel  # noqa: F401
from tinymm.models.vit import ViT  # noqa: F401
