"""Command-line overrides that make a config's ``mann fit`` tiny and quiet in tests."""

from __future__ import annotations

#: No progress bar, summary or logger; two training batches and one evaluation batch.
FAST_FIT_ARGS = [
    "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false",
    "--trainer.logger=false",
    "--data.init_args.train_batches_per_epoch=2",
    "--data.init_args.val_batches=1",
    "--data.init_args.test_batches=1",
]
