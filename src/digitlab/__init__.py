"""digitlab: a complete, reproducible image-classification study from one config.

Every piece is a plain library call::

    from digitlab.data import load_dataset, stratified_subset
    ds = load_dataset("mnist")
    idx = stratified_subset(ds.y_train, per_class=100, seed=0)
"""

__version__ = "0.1.0"
