"""Training throughput of digitlab's engine against the usual per-sample PIL + DataLoader pipeline,
and the wall time of the fast recipe on the full MNIST training set.

    python benchmarks/bench_train.py                 # 20,000 images x 3 alternating repeats, then FAST_RECIPE
    python benchmarks/bench_train.py --images 5000 --repeats 1 --no-recipe
    python benchmarks/bench_train.py --strong         # also time STRONG_RECIPE (minutes on a CPU)
    python benchmarks/bench_train.py --only-notebook  # the course notebook's LeNet against ONE_EPOCH_RECIPE

Both pipelines train the same network (the fast recipe's) with the same optimiser and batch size
for one pass over the same ``--images`` training images; runs alternate (ours, theirs, ours, ...)
so that a machine shared with other work slows both alike. The baseline is the course-notebook
way: a ``Dataset`` whose ``__getitem__`` turns one uint8 array into a PIL image and then into a
normalised tensor, batched by a ``DataLoader`` (``num_workers=0``, NCHW layout).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from digitlab.data import load_dataset, stratified_subset
from digitlab.models.nets import build_net, count_parameters
from digitlab.train import FAST_RECIPE, ONE_EPOCH_RECIPE, STRONG_RECIPE, fit, predict_proba


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--images", type=int, default=20_000, help="training images per throughput run (stratified subset)"
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="alternating runs of each pipeline (and runs of ONE_EPOCH_RECIPE in the race)",
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    p.add_argument(
        "--no-recipe", action="store_true", help="skip timing FAST_RECIPE on the full training set"
    )
    p.add_argument("--strong", action="store_true", help="also time STRONG_RECIPE")
    p.add_argument(
        "--notebook",
        action="store_true",
        help="race the course notebook's LeNet to its best accuracy (minutes)",
    )
    p.add_argument(
        "--notebook-epochs",
        type=int,
        default=12,
        help="epochs the notebook trains (its best accuracy is the target)",
    )
    p.add_argument("--only-notebook", action="store_true", help="run only the notebook race")
    return p


# ---------------------------------------------------------------------------------------------
# The baseline: per-sample PIL conversion and a DataLoader
# ---------------------------------------------------------------------------------------------


class PILDataset(torch.utils.data.Dataset):
    """One image at a time: uint8 array -> PIL image -> float tensor, normalised."""

    def __init__(self, x: np.ndarray, y: np.ndarray, mean: float, std: float):
        self.x, self.y, self.mean, self.std = x, y, mean, std

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        img = Image.fromarray(self.x[i], mode="L")
        t = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).unsqueeze(0)
        return (t - self.mean) / self.std, int(self.y[i])


def pil_loader(
    x: np.ndarray, y: np.ndarray, batch_size: int
) -> tuple[torch.utils.data.DataLoader, float, float]:
    """A shuffling DataLoader over :class:`PILDataset`, normalised by the images' mean and std (returned too)."""
    xf = x.astype(np.float32) / 255
    mean, std = float(xf.mean()), float(xf.std())
    return (
        torch.utils.data.DataLoader(PILDataset(x, y, mean, std), batch_size=batch_size, shuffle=True),
        mean,
        std,
    )


def loader_epoch(model: torch.nn.Module, loader, opt: torch.optim.Optimizer) -> float:
    """One plain training pass over ``loader`` (NCHW, fp32); returns its seconds."""
    model.train()
    t0 = time.perf_counter()
    for xb, yb in loader:
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def baseline_epoch(
    x: np.ndarray, y: np.ndarray, net_name: str, net_params: dict, batch_size: int, lr: float, seed: int
) -> float:
    """One epoch through the PIL + DataLoader pipeline; returns training seconds."""
    torch.manual_seed(seed)
    model = build_net(net_name, seed=seed, **net_params)
    loader, _, _ = pil_loader(x, y, batch_size)
    return loader_epoch(model, loader, torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4))


def engine_epoch(x: np.ndarray, y: np.ndarray, net_name: str, net_params: dict, cfg, seed: int) -> float:
    """One epoch through :func:`digitlab.train.fit` (no validation split, no step budget); returns training seconds."""
    model = build_net(net_name, seed=seed, **net_params)
    res = fit(model, x, y, replace(cfg, epochs=1, min_steps=0, val_fraction=0.0, seed=seed))
    assert res.n_train_images_seen == len(x), "one epoch must see each image once"
    return res.train_seconds


# ---------------------------------------------------------------------------------------------
# The course notebook: LeNet-style CNN, Adam 1e-3, batch 256, per-sample PIL Dataset + DataLoader
# ---------------------------------------------------------------------------------------------


def notebook_lenet() -> torch.nn.Module:
    """conv 6@5x5 -> avg-pool -> conv 16@5x5 -> avg-pool -> FC 120-84-10, ReLU (the course notes' network)."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, 10),
    )


def notebook_run(ds, epochs: int, seed: int = 0) -> list[tuple[int, float, float]]:
    """Train the notebook's way, testing after every epoch; returns (epoch, training seconds so far, test accuracy).

    Only the training loops are timed (the per-epoch test passes are not), which favours the notebook.
    """
    torch.manual_seed(seed)
    model = notebook_lenet()
    loader, mean, std = pil_loader(ds.x_train, ds.y_train, 256)
    x_test = (torch.from_numpy(ds.x_test.astype(np.float32) / 255).unsqueeze(1) - mean) / std
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rows, elapsed = [], 0.0
    for epoch in range(1, epochs + 1):
        elapsed += loader_epoch(model, loader, opt)
        model.eval()
        with torch.inference_mode():
            acc = float((model(x_test).argmax(1).numpy() == ds.y_test).mean())
        rows.append((epoch, elapsed, acc))
        print(
            f"  notebook epoch {epoch:2d}: {elapsed:6.1f} s of training, test accuracy {acc * 100:.2f} %",
            flush=True,
        )
    return rows


def engine_to(ds, spec, target: float) -> tuple[float, float]:
    """Train ``spec`` (a recipe) on the full training split with :func:`fit`; returns (wall seconds of fit, test accuracy)."""
    net_name, net_params, cfg = spec
    t0 = time.perf_counter()
    res = fit(build_net(net_name, seed=cfg.seed, **net_params), ds.x_train, ds.y_train, cfg)
    wall = time.perf_counter() - t0
    acc = float(np.mean(predict_proba(res.model, ds.x_test, norm=res.norm).argmax(1) == ds.y_test))
    return wall, acc


def notebook_race(ds, args) -> None:
    """Time to the notebook's best test accuracy: the notebook (epochs until its best) against ONE_EPOCH_RECIPE."""
    print(
        f"notebook race: the course notebook's LeNet for {args.notebook_epochs} epochs, then digitlab's ONE_EPOCH_RECIPE "
        f"({args.repeats} run(s) alternating with the notebook's epochs)"
    )
    rows = notebook_run(ds, args.notebook_epochs)
    best = max(rows, key=lambda r: (r[2], -r[1]))
    target, nb_seconds = best[2], best[1]
    print(f"  notebook best: {target * 100:.2f} % after {best[0]} epoch(s), {nb_seconds:.1f} s of training")
    ours = []
    for r in range(args.repeats):
        name, params, cfg = ONE_EPOCH_RECIPE
        wall, acc = engine_to(ds, (name, params, replace(cfg, seed=r)), target)
        ours.append((wall, acc))
        print(
            f"  ONE_EPOCH_RECIPE seed {r}: {acc * 100:.2f} % in {wall:.2f} s (fit incl. data preparation)"
            f"{'' if acc >= target else ' -- MISSED the notebook best'}",
            flush=True,
        )
    reached = [w for w, a in ours if a >= target]
    if reached:
        med = float(np.median(reached))
        print(
            f"  time to {target * 100:.2f} %: notebook {nb_seconds:.1f} s, digitlab {med:.2f} s (median of {len(reached)} of "
            f"{len(ours)} runs that reached it): {nb_seconds / med:.1f}x sooner"
        )
    else:
        print("  digitlab never reached the notebook's best accuracy in one run of ONE_EPOCH_RECIPE")


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


def throughput(ds, args) -> None:
    net_name, net_params, cfg = FAST_RECIPE
    idx = stratified_subset(ds.y_train, total=args.images, seed=0)
    x, y = ds.x_train[idx], ds.y_train[idx]
    print(
        f"throughput: {args.images:,} images, net {net_name} {net_params} ({count_parameters(build_net(net_name, **net_params)):,} "
        f"parameters), batch {cfg.batch_size}, channels_last={cfg.channels_last} (ours), {args.repeats} alternating repeat(s)"
    )
    ours, theirs = [], []
    for r in range(args.repeats):
        ours.append(args.images / engine_epoch(x, y, net_name, net_params, cfg, seed=r))
        theirs.append(
            args.images / baseline_epoch(x, y, net_name, net_params, cfg.batch_size, cfg.lr, seed=r)
        )
        print(
            f"  repeat {r + 1}: engine {ours[-1]:8.0f} img/s   PIL+DataLoader {theirs[-1]:8.0f} img/s   "
            f"ratio {ours[-1] / theirs[-1]:.2f}x",
            flush=True,
        )
    print(
        f"  median: engine {np.median(ours):.0f} img/s, PIL+DataLoader {np.median(theirs):.0f} img/s, "
        f"ratio {np.median(ours) / np.median(theirs):.2f}x"
    )


def recipe(ds, name: str, spec, target: float) -> None:
    net_name, net_params, cfg = spec
    model = build_net(net_name, seed=cfg.seed, **net_params)
    t0, c0 = time.perf_counter(), time.process_time()
    res = fit(model, ds.x_train, ds.y_train, cfg)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    acc = float(np.mean(predict_proba(res.model, ds.x_test, norm=res.norm).argmax(1) == ds.y_test))
    verdict = "reached" if acc >= target else "MISSED"
    print(
        f"{name}: {net_name} {net_params}, {cfg.epochs} epoch(s), batch {cfg.batch_size}, {cfg.optimizer} lr {cfg.lr}, "
        f"{cfg.scheduler}, augment {cfg.augment or 'none'}: test accuracy {acc * 100:.2f} % ({verdict} {target * 100:.1f} %), training {res.train_seconds:.1f} s "
        f"(fit incl. data preparation {wall:.1f} s, {cpu:.1f} CPU s, load average now {os.getloadavg()[0]:.1f}); val acc per epoch {[round(h['val_acc'] * 100, 2) for h in res.history]}"
    )


def main() -> None:
    args = parser().parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"load average {load:.1f} at start"
    )
    ds = load_dataset("mnist")
    if args.only_notebook:
        notebook_race(ds, args)
        return
    throughput(ds, args)
    if not args.no_recipe:
        recipe(ds, "FAST_RECIPE", FAST_RECIPE, 0.99)
    if args.strong:
        recipe(ds, "STRONG_RECIPE", STRONG_RECIPE, 0.995)
    if args.notebook:
        notebook_race(ds, args)


if __name__ == "__main__":
    main()
