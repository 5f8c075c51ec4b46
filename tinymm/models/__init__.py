"""Floor 7: models built from the layers below, and pretrained ones loaded from their files."""
from tinymm.models.bert import BertCheckpointError, BertConfig, BertModel  # noqa: F401
from tinymm.models.sentence_encoder import PretrainedNotFoundError, SentenceEncoder, resolve_pretrained  # noqa: F401
