"""Decode every face once into a compact on-disk cache of model-sized crops.

The cache is written in shards, each appearing atomically (temp file + rename), and a manifest
written last marks it complete. An interrupted run leaves only whole shards, which a rerun reuses:
AffectNet's ~420k images need not be decoded twice. A cache is keyed by the exact sample list, the
size and modification time of every image file, and the input size, so a changed dataset, an
edited image or another size never reuses stale crops.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from fer.errors import FerError
from fer.preprocess import ImageError, crop_square, decode_image, to_model_input
from fer.readers import Dataset
from fer.readers.base import Sample, SkipLog, fingerprint

CACHE_VERSION = 1
SHARD_SIZE = 4096
MANIFEST = "manifest.json"


@dataclass
class FaceCache:
    """Model-sized uint8 crops, label indices into `labels`, and what was skipped on the way."""

    images: np.ndarray  # N x H x W x C, uint8
    targets: np.ndarray  # N, int64
    keys: np.ndarray  # N, str
    labels: tuple[str, ...]
    skips: SkipLog
    source: str
    path: Path | None = None

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.targets, minlength=len(self.labels))
        return {name: int(n) for name, n in zip(self.labels, counts, strict=True)}

    def subset(self, index: np.ndarray) -> FaceCache:
        return FaceCache(self.images[index], self.targets[index], self.keys[index], self.labels,
                         self.skips, self.source, self.path)


def default_cache_root() -> Path:
    base = os.environ.get("FER_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "fer")
    return Path(base)


def _file_stamps(samples: list[Sample]) -> str | None:
    """A hash of every image file's size and modification time, in sample order, so an image
    changed in place invalidates its crops (hashing contents would mean reading AffectNet's ~420k
    files on every run); None when no file is there at all (the data has been moved away)."""
    h, present = hashlib.sha1(), False
    for s in samples:
        if s.path is None:
            continue  # decoded pixels are in the sample fingerprint already
        try:
            st = os.stat(s.path)
        except OSError:
            h.update(b"missing\n")
            continue
        present = True
        h.update(f"{st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:8] if present or all(s.path is None for s in samples) else None


def _cache_dir(root: Path, dataset: Dataset, labels: tuple[str, ...], size: tuple[int, int],
               channels: int) -> Path:
    """<name>-<HxWxC>-<samples and settings>-<file stamps>. When none of the files is on disk any
    more, the newest complete cache of the same samples and settings is reused."""
    h = hashlib.sha1(json.dumps([CACHE_VERSION, fingerprint(dataset.samples), labels, size,
                                 channels]).encode()).hexdigest()[:12]
    slug = re.sub(r"[^A-Za-z0-9]+", "-", dataset.source.split("/")[-1] or "data").strip("-")[-40:]
    prefix = f"{slug or 'data'}-{size[0]}x{size[1]}x{channels}-{h}"
    stamps = _file_stamps(dataset.samples)
    if stamps is None:
        built = sorted(root.glob(f"{prefix}-*/{MANIFEST}"), key=lambda p: p.stat().st_mtime)
        return built[-1].parent if built else root / f"{prefix}-nosource"
    return root / f"{prefix}-{stamps}"


def _load_face(sample: Sample, size: tuple[int, int], channels: int) -> np.ndarray:
    image = sample.pixels if sample.pixels is not None else decode_image(sample.path, channels == 1)
    if sample.box is not None:
        image = crop_square(image, sample.box)
    return to_model_input(image, size, channels)


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _build_shard(samples: list[Sample], labels: tuple[str, ...], size: tuple[int, int],
                 channels: int, pool: ThreadPoolExecutor) -> dict[str, np.ndarray]:
    index = {name: i for i, name in enumerate(labels)}
    skips = SkipLog()

    def work(sample: Sample) -> np.ndarray | None:
        try:
            return _load_face(sample, size, channels)
        except ImageError as e:
            skips.add(str(e), sample.key)
            return None

    faces, targets, keys = [], [], []
    for sample, face in zip(samples, pool.map(work, samples), strict=True):
        if face is not None:
            faces.append(face)
            targets.append(index[sample.label])
            keys.append(sample.key)
    images = np.stack(faces) if faces else np.zeros((0, *size, channels), np.uint8)
    return {"images": images, "targets": np.asarray(targets, np.int64),
            "keys": np.asarray(keys, dtype=str), "skips": np.asarray(json.dumps(skips.as_dict()))}


def _read_shard(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            shard = {k: z[k] for k in ("images", "targets", "keys", "skips")}
    except Exception as e:  # a truncated or foreign file: numpy raises many kinds
        raise FerError(f"cache shard {path} is corrupt ({type(e).__name__}); delete {path.parent} "
                       "or rerun with --rebuild-cache") from e
    if len(shard["images"]) != len(shard["targets"]):
        raise FerError(f"cache shard {path} is inconsistent; delete {path.parent} or rerun with "
                       "--rebuild-cache")
    return shard


def _skiplog(data: dict) -> SkipLog:
    log = SkipLog()
    for reason, n in data.get("by_reason", {}).items():
        log.counts[reason] += n
    log.examples = data.get("examples", {})
    return log


def prepare(dataset: Dataset, labels: tuple[str, ...], size: tuple[int, int], channels: int,
            cache_root: Path | None = None, rebuild: bool = False, workers: int = 4,
            progress: bool = True) -> FaceCache:
    """Return the dataset as model-sized crops, building or resuming its cache when needed."""
    unknown = {s.label for s in dataset.samples} - set(labels)
    if unknown:
        raise FerError(f"{dataset.source} has labels {sorted(unknown)} outside the model's "
                       f"{list(labels)}")
    root = _cache_dir(cache_root or default_cache_root(), dataset, labels, size, channels)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FerError(f"cannot create cache folder {root}: {e.strerror}; pass --cache-dir") from e
    manifest_path = root / MANIFEST
    if rebuild:
        for p in root.iterdir():
            p.unlink()
    n_shards = max(1, -(-len(dataset.samples) // SHARD_SIZE))
    names = [f"shard-{i:05d}.npz" for i in range(n_shards)]

    shards: list[dict[str, np.ndarray]] = []
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text())
            assert manifest["version"] == CACHE_VERSION and manifest["shards"] == names
        except Exception as e:
            raise FerError(f"cache manifest {manifest_path} is corrupt; delete {root} or rerun "
                           "with --rebuild-cache") from e
        shards = [_read_shard(root / name) for name in names]
        if sum(len(s["targets"]) for s in shards) != manifest["count"]:
            raise FerError(f"cache {root} does not match its manifest; delete it or rerun with "
                           "--rebuild-cache")
    else:
        bar = tqdm(total=len(dataset.samples), desc=f"preparing {Path(dataset.source).name}",
                   unit="img", disable=not progress, dynamic_ncols=True)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for i, name in enumerate(names):
                part = dataset.samples[i * SHARD_SIZE:(i + 1) * SHARD_SIZE]
                path = root / name
                shard = _read_shard(path) if path.is_file() else None
                if shard is None:
                    shard = _build_shard(part, labels, size, channels, pool)
                    _write_atomic(path, lambda f, s=shard: np.savez(f, **s))
                shards.append(shard)
                bar.update(len(part))
        bar.close()
        count = sum(len(s["targets"]) for s in shards)
        manifest = {"version": CACHE_VERSION, "source": dataset.source, "format": dataset.format,
                    "labels": list(labels), "size": list(size), "channels": channels,
                    "count": count, "shards": names}
        _write_atomic(manifest_path, lambda f: f.write(json.dumps(manifest, indent=1).encode()))

    skips = SkipLog()
    skips.merge(dataset.skips)
    for shard in shards:
        skips.merge(_skiplog(json.loads(str(shard["skips"]))))
    images = np.concatenate([s["images"] for s in shards])
    if len(images) == 0:
        raise FerError(f"{dataset.source}: no usable images ({skips.summary()})")
    return FaceCache(images=images, targets=np.concatenate([s["targets"] for s in shards]),
                     keys=np.concatenate([s["keys"] for s in shards]), labels=labels,
                     skips=skips, source=dataset.source, path=root)


#: The skip reason for faces of a class the model is not trained on (`--classes`, or a subset
#: model evaluated on a dataset with more classes).
OTHER_CLASS = "class not in the model's classes"


def restrict_classes(cache: FaceCache, classes: tuple[str, ...]) -> FaceCache:
    """Only the faces of `classes`, re-indexed into that order; the others are counted as skipped.

    Caches are built with the full label set and narrowed here, so one decoded FER2013 serves a
    7-class and a 5-class run alike."""
    if classes == cache.labels:
        return cache
    remap = np.array([classes.index(n) if n in classes else -1 for n in cache.labels], np.int64)
    targets = remap[cache.targets] if len(cache) else cache.targets
    keep = targets >= 0
    skips = SkipLog()
    skips.merge(cache.skips)
    for name, n in cache.class_counts().items():
        if name not in classes and n:
            skips.counts[OTHER_CLASS] += n
            skips.examples.setdefault(OTHER_CLASS, [])
    shown = skips.examples.get(OTHER_CLASS)
    if shown is not None:
        shown.extend(cache.keys[~keep][: skips.max_examples - len(shown)].tolist())
    return FaceCache(cache.images[keep], targets[keep], cache.keys[keep], classes, skips,
                     cache.source, cache.path)


def combine_caches(caches: list[FaceCache]) -> FaceCache:
    """Several prepared datasets (same labels, size and channels) as one training set."""
    if len(caches) == 1:
        return caches[0]
    skips = SkipLog()
    for c in caches:
        skips.merge(c.skips)
    return FaceCache(images=np.concatenate([c.images for c in caches]),
                     targets=np.concatenate([c.targets for c in caches]),
                     keys=np.concatenate([c.keys for c in caches]), labels=caches[0].labels,
                     skips=skips, source=" + ".join(c.source for c in caches))
