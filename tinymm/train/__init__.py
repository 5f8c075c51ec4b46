"""Floor 8: the training loop. It knows no modality, only the contract with models:

``model(batch)`` takes a task's collated batch (numeric arrays as Tensors on the device) and
returns logits or embeddings; ``loss_fn(output, batch)`` returns a scalar Tensor.

    trainer = Trainer(model, opt, loss_fn, train_loader, val_loader, epochs=5, out_dir="runs/x")
    history = trainer.fit()            # progress bars, one line per epoch, checkpoints, plots
    trainer.fit(resume=True)           # continue from runs/x/checkpoints/last.safetensors
"""
from tinymm.train.callbacks import Callback, Checkpoint, EarlyStopping  # noqa: F401
from tinymm.train.checkpoint import read_checkpoint, restore_checkpoint, save_checkpoint  # noqa: F401
from tinymm.train.compare import format_table, score, train_epochs  # noqa: F401
from tinymm.train.history import plot_history, write_history  # noqa: F401
from tinymm.train.trainer import TrainingDiverged, Trainer, to_tensors  # noqa: F401
