"""Settings of the cluster task (its ``[cluster]`` config section): types, defaults = the standard profile,
ranges checked by ``validate()`` when the config is resolved."""

from __future__ import annotations

from dataclasses import dataclass, field

from digitlab import embed as E
from digitlab.exceptions import ConfigError
from digitlab.experiments import clustering as C
from digitlab.models.nets import NET_NAMES

SPACES = C.SPACES  # "umap"/"tsne": the embed task's 2-D map of that method


COVARIANCES = ("auto", "full", "diag", "tied", "spherical")


@dataclass
class Config:
    # --- part 1: images -------------------------------------------------------------------------
    methods: list[str] = field(
        default_factory=lambda: ["kmeans", "gmm", "ward", "hdbscan", "spectral"]
    )  # of METHODS
    spaces: list[str] = field(
        default_factory=lambda: ["pixels", "pca", "umap"]
    )  # pixels, pca (PCA to pca_dims), umap, tsne (embed's 2-D maps)
    n_points: int = 5000  # images clustered: a stratified subset of the embed task's points; 0 = all of them
    # dimensions of the "pca" space (and of the layer features before clustering, see layer_pca_dims)
    pca_dims: int = 50
    n_clusters: int = 0  # clusters asked of every method but HDBSCAN; 0 = the number of classes
    # k-means restarts, the best kept (the Gaussian mixture starts once, from k-means++ centres)
    kmeans_n_init: int = 4
    gmm_covariance: str = "auto"  # Gaussian mixture covariance: auto (full on 2-D maps, diagonal above 10 dims), full, diag, tied, spherical
    # HDBSCAN's smallest cluster in points; 0 = n / (4 x clusters), a quarter of an average class
    hdbscan_min_cluster_size: int = 0
    hdbscan_min_samples: int = 0  # HDBSCAN's density neighbourhood in points; 0 = 10 (larger = more noise)
    spectral_neighbors: int = 15  # spectral clustering: neighbours in the k-NN affinity graph
    draw_on: str = "umap"  # the embed map the cluster assignments are drawn on (umap, tsne or pca)
    # --- part 2: the layers of a CNN ------------------------------------------------------------
    layers: bool = True  # run part 2 (train a CNN, cluster and probe its layers)
    net: str = "cnn"  # network family (lenet5, cnn, resnet, convmixer); "cnn" = the fast recipe's network
    n_train: int = 10000  # training images of the CNN (stratified subset; 0 = all)
    n_test: int = 4000  # test images whose layer activations are clustered and probed (0 = all)
    epochs: int = 2  # training epochs (the fast recipe's 2)
    # optimiser-step budget: more epochs on small training sets (the fast recipe's 200; 0 = off)
    min_steps: int = 200
    merge: list[str] = field(
        default_factory=lambda: ["gap", "flatten"]
    )  # how a block's channels become a vector: gap = global average pooling (C values), flatten = every unit (C*H*W)
    layer_methods: list[str] = field(default_factory=lambda: ["kmeans", "ward"])  # methods run on each layer
    layer_pca_dims: int = 50  # layer features are projected on this many principal components before clustering (0 = cluster them as they are)
    # share of the n_test images the linear probe is scored on (it is fitted on the rest)
    probe_test_fraction: float = 0.5
    probe_c: float = 1.0  # inverse L2 strength of the probe's logistic regression
    probe_max_iter: int = 100  # lbfgs iterations of the probe (capped: the same cap for every layer)
    feature_map_channels: int = 4  # channels drawn per network in each block's feature-map figure

    def validate(self) -> None:
        def bad(key: str, problem: str, fix: str) -> ConfigError:
            return ConfigError(f"config key cluster.{key}: {problem}; {fix}")

        for key, allowed in (
            ("methods", C.METHODS),
            ("layer_methods", C.METHODS),
            ("spaces", SPACES),
            ("merge", C.MERGES),
        ):
            value = getattr(self, key)
            unknown = [v for v in value if v not in allowed]
            if not value or unknown:
                raise bad(key, f"{unknown or 'empty'} not valid", f"choose from {', '.join(allowed)}")
            if len(set(value)) != len(value):
                raise bad(key, f"{value} repeats a name", "list each once")
        if self.draw_on not in E.METHODS:
            raise bad(
                "draw_on", f"{self.draw_on!r} is not an embed method", f"choose from {', '.join(E.METHODS)}"
            )
        if self.net not in NET_NAMES:
            raise bad("net", f"{self.net!r} is unknown", f"choose from {', '.join(NET_NAMES)}")
        if self.gmm_covariance not in COVARIANCES:
            raise bad(
                "gmm_covariance",
                f"{self.gmm_covariance!r} is unknown",
                f"choose from {', '.join(COVARIANCES)}",
            )
        if self.n_points != 0 and self.n_points < 50:
            raise bad(
                "n_points",
                f"{self.n_points} is too few",
                "use 0 (all the embed task's points) or at least 50",
            )
        if self.n_test != 0 and self.n_test < 100:
            raise bad(
                "n_test",
                f"{self.n_test} is too few for a clustering and a held-out probe",
                "use 0 (all) or at least 100",
            )
        if self.n_train != 0 and self.n_train < 100:
            raise bad("n_train", f"{self.n_train} is too few to train a CNN", "use 0 (all) or at least 100")
        counts = {
            "epochs": 1,
            "kmeans_n_init": 1,
            "probe_max_iter": 1,
            "spectral_neighbors": 2,
            "feature_map_channels": 1,
            "pca_dims": 2,
        }
        for key, low in counts.items():
            if getattr(self, key) < low:
                raise bad(key, f"{getattr(self, key)} is below {low}", f"use an integer >= {low}")
        sizes = (
            "n_clusters",
            "hdbscan_min_cluster_size",
            "hdbscan_min_samples",
            "min_steps",
            "layer_pca_dims",
        )
        for key in sizes:
            if getattr(self, key) < 0:
                raise bad(
                    key, f"{getattr(self, key)} is negative", "use 0 (automatic/off) or a positive integer"
                )
        if self.n_clusters == 1:
            raise bad("n_clusters", "1 cluster scores nothing", "use 0 (the number of classes) or at least 2")
        if self.layer_pca_dims == 1:
            raise bad("layer_pca_dims", "1 dimension", "use 0 (no projection) or at least 2")
        if not 0.1 <= self.probe_test_fraction <= 0.9:
            raise bad(
                "probe_test_fraction",
                f"{self.probe_test_fraction} out of range",
                "use a share from 0.1 to 0.9",
            )
        if self.probe_c <= 0:
            raise bad("probe_c", f"{self.probe_c} is not positive", "use a positive number, e.g. 1.0")


# quick: 1,000 images for part 1 and a CNN trained for 60 steps on 2,000 images for part 2. full: 10,000
# images (Ward's and HDBSCAN's pairwise distances grow as n^2: 0.4 and 0.8 GB at 10,000; beyond 10,000
# HDBSCAN leaves brute force for a tree, which took over 7 minutes on 10,000 MNIST images in pixel space),
# the whole training set and every test image. Measured times: see the report of issue 9 / README.
PROFILES: dict[str, dict] = {
    "quick": {
        "n_points": 1000,
        "methods": ["kmeans", "gmm", "ward", "hdbscan", "spectral"],
        "kmeans_n_init": 2,
        "n_train": 2000,
        "n_test": 1000,
        "min_steps": 60,
        "layer_methods": ["kmeans"],
    },
    "full": {
        "n_points": 10000,
        "n_train": 0,
        "n_test": 0,
        "layer_methods": ["kmeans", "gmm", "ward", "spectral"],
    },
}
