"""Data layer: IDX files, image folders, DDR fundus photographs, the dataset registry, stratified subsets."""

from digitlab.data.folders import ImageSpec, load_folder_dataset, load_image_folder, load_images
from digitlab.data.fundus import FundusSpec, load_ddr, synth_fundus
from digitlab.data.idx import read_idx, write_idx
from digitlab.data.registry import REGISTRY, Dataset, load_dataset, verify_dataset
from digitlab.data.subsets import stratified_subset

__all__ = [
    "Dataset",
    "REGISTRY",
    "load_dataset",
    "verify_dataset",
    "read_idx",
    "write_idx",
    "stratified_subset",
    "ImageSpec",
    "load_images",
    "load_image_folder",
    "load_folder_dataset",
    "FundusSpec",
    "load_ddr",
    "synth_fundus",
]
