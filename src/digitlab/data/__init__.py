"""Data layer: IDX files, the dataset registry, stratified subsets."""

from digitlab.data.idx import read_idx, write_idx
from digitlab.data.registry import REGISTRY, Dataset, load_dataset, verify_dataset
from digitlab.data.subsets import stratified_subset

__all__ = ["Dataset", "REGISTRY", "load_dataset", "verify_dataset", "read_idx", "write_idx", "stratified_subset"]
