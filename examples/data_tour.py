"""The generated multimodal world: load a task, inject and clean faults, augment, tokenise,
batch with padding, and look at audio features of a spoken question.

    python examples/data_tour.py
"""
import numpy as np

from tinymm.data import (
    Augmented,
    Compose,
    DataLoader,
    HorizontalFlip,
    RandomTranslate,
    Tokenizer,
    answer_question,
    clean,
    inject_faults,
    load_task,
    log_mel_spectrogram,
    make_collate,
)


def main(argv=None):
    train = load_task("av_qa", "train", num_samples=200)
    s = train[0]
    print(f"question: {s['question']!r} -> answer {train.answer_vocab[s['answer']]!r}")
    print(f"image {s['image'].shape}, audio {s['audio'].shape} at {s['sample_rate']} Hz")
    assert answer_question(s["scene"], s["question"]) == train.answer_vocab[s["answer"]]

    dirty, record = inject_faults(load_task("vqa", "train", num_samples=200), rate=0.1, seed=1)
    cleaned, report = clean(dirty)
    print(f"cleaning: {len(dirty)} samples -> {len(cleaned)}; report {report}")

    tok = Tokenizer.build([train[i]["question"] for i in range(len(train))])
    flip = Augmented(train, Compose([HorizontalFlip(p=0.5), RandomTranslate(max_shift=2)]), seed=0)
    loader = DataLoader(flip, batch_size=16, shuffle=True, seed=0, collate_fn=make_collate(tok, text_keys=("question",)))
    batch = next(iter(loader))
    print({k: (v.shape, str(v.dtype)) for k, v in batch.items() if isinstance(v, np.ndarray)})

    mel = log_mel_spectrogram(s["audio"], s["sample_rate"], n_fft=256, hop_length=80, n_mels=40)
    print(f"log-mel of the spoken question: {mel.shape} (mels x frames)")


if __name__ == "__main__":
    main()
