"""The penguin task for the Hugging Face Trainer: dict batches with ``labels``, a model
that computes its own loss, as ``transformers`` models do."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from collapse_callbacks.demo import NUMERIC
from training_task import BATCH, classifier, tables, tensors


class DictRows(Dataset):
    def __init__(self, table, scale_from) -> None:
        self.data = tensors(table, scale_from)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index):
        x, y = self.data[index]
        row = {name: x[i] for i, name in enumerate(NUMERIC)}
        row["labels"] = y
        return row


class PenguinModel(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = classifier()

    # Named inputs: the Trainer drops batch keys the forward signature does not name.
    def forward(self, bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g, labels=None):
        x = torch.stack([bill_length_mm, bill_depth_mm, flipper_length_mm, body_mass_g], dim=1)
        logits = self.net(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = torch.nn.functional.cross_entropy(logits, labels)
        return out


def datasets(seed: int = 0):
    """(reference, real, collapsed) as map-style datasets of dict rows."""
    reference, real, collapsed = tables(seed)
    return tuple(DictRows(t, reference) for t in (reference, real, collapsed))


def reference_loader(reference: Dataset) -> DataLoader:
    from transformers import default_data_collator

    return DataLoader(reference, batch_size=BATCH, collate_fn=default_data_collator)


def training_args(output_dir, **options):
    from transformers import TrainingArguments

    defaults = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=BATCH,
        num_train_epochs=1,
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    return TrainingArguments(**{**defaults, **options})
