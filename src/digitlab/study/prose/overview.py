"""Sentences of the ``overview`` task, filled in from the numbers."""

from __future__ import annotations


def findings(ds, s: dict, rows: list[dict], imbalance: float, dup: dict) -> list[str]:
    """``s``: the dataset's summary; ``rows``: per class train/test counts and mean pixel; ``dup``: duplicates."""
    tr = [r["train"] for r in rows]
    big, small = max(range(len(tr)), key=tr.__getitem__), min(range(len(tr)), key=tr.__getitem__)
    by_ink = sorted(rows, key=lambda r: r["mean pixel"])
    return [
        f"{ds.name} has {s['n_train']:,} training and {s['n_test']:,} test images of {s['image_shape'][0]}x{s['image_shape'][1]} pixels in {ds.n_classes} classes.",
        f"The largest training class ({ds.classes[big]}, {tr[big]:,}) is {imbalance:.2f}x the smallest ({ds.classes[small]}, {tr[small]:,}): "
        + (
            "the classes are close to balanced, so accuracy is a fair headline metric here."
            if imbalance < 1.5
            else "the classes are imbalanced, so balanced accuracy, macro F1 and per-class recall matter more than accuracy here."
        ),
        f"{100 * s['fraction_zero_pixels']:.1f} % of all training pixels are exactly 0 (background); the mean intensity is {s['pixel_mean']:.1f} of 255 with standard deviation {s['pixel_std']:.1f}.",
        (
            f"Class {by_ink[0]['class']} uses the least ink (mean pixel {by_ink[0]['mean pixel']}) and class {by_ink[-1]['class']} the most ({by_ink[-1]['mean pixel']}): ink alone already carries some class information."
            if ds.meta.get("ink_on_blank", not ds.is_colour)
            else f"Class {by_ink[0]['class']} has the darkest images on average (mean pixel {by_ink[0]['mean pixel']}, all channels) and class {by_ink[-1]['class']} the brightest ({by_ink[-1]['mean pixel']}); "
            f"the spread of class means ({by_ink[-1]['mean pixel'] - by_ink[0]['mean pixel']:.1f} grey levels) shows how much brightness alone could tell the classes apart."
        ),
        f"Exact duplicate images between the training and test split in a sample of {dup['checked']:,} test images: {dup['duplicates']}.",
    ]


SUMMARY = "Before modelling anything we read the data and check its size, balance and value range."
DATASET_TABLE = "Dataset summary (checksums verified on load)."
CLASSES_TABLE = "Images per class."
CLASS_COUNTS = "Class shares of each split."
PIXEL_HIST = "Distribution of pixel intensities in the training set."


def samples_caption(per_class: int) -> str:
    return f"{per_class} random training images per class."
