"""Floor 6: data. A generated multimodal world (no download; generated lazily, block by block,
so a split of any length costs the same memory), the preparation steps a
practitioner applies (annotation, cleaning, augmentation, tokenisation, audio features), and
loading (``DataLoader`` with padding collate). NumPy only: nothing here imports nn.

    from tinymm.data import load_task, DataLoader, make_collate, Tokenizer
    train = load_task("vqa", "train")
"""
from tinymm.data.audio_features import (  # noqa: F401
    dct,
    frame,
    hann_window,
    log_mel_spectrogram,
    mel_filterbank,
    mel_spectrogram,
    mfcc,
    power_spectrogram,
    stft,
)
from tinymm.data.augment import (  # noqa: F401
    AudioGain,
    AudioNoise,
    AudioTimeShift,
    Augmented,
    ColorJitter,
    Compose,
    GaussianNoise,
    HorizontalFlip,
    RandomTranslate,
    SpecAugment,
    SynonymSubstitution,
    TokenDropout,
)
from tinymm.data.cleaning import FAULT_KINDS, clean, inject_faults  # noqa: F401
from tinymm.data.generate import World  # noqa: F401
from tinymm.data.loader import (  # noqa: F401
    ArrayDataset,
    DataLoader,
    Dataset,
    Subset,
    TextCollate,
    default_collate,
    make_collate,
    random_split,
)
from tinymm.data.questions import ANSWER_VOCAB, answer_question  # noqa: F401
from tinymm.data.real import load_digits, load_mnist_5k  # noqa: F401
from tinymm.data.summary import summarize  # noqa: F401
from tinymm.data.tasks import TASKS, UnknownTaskError, load_task  # noqa: F401
from tinymm.data.tokenizer import Tokenizer  # noqa: F401
from tinymm.data.wordpiece import WordPieceTokenizer  # noqa: F401
