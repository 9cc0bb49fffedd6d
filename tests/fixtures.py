"""Generate datasets in their real on-disk formats for the tests (no committed blobs)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from fer.labels import LABELS


def face_like(seed: int, size: int = 48, channels: int = 1) -> np.ndarray:
    """A deterministic image with structure (so resizing and crops are visible), not noise only."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = (np.sin(xx / (3 + seed % 5)) + np.cos(yy / (2 + seed % 7))) * 60 + 128
    image = np.clip(base + rng.normal(0, 10, (size, size)), 0, 255).astype(np.uint8)
    if channels == 3:
        image = np.stack([image, np.roll(image, 3, 0), np.roll(image, 5, 1)], axis=-1)
    return image


def write_image(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix or ".png", image)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def fer2013_csv(path: Path, per_class: int = 3, usages=("Training", "PublicTest", "PrivateTest"),
                bad_rows: bool = False) -> Path:
    """Kaggle's fer2013.csv: emotion,pixels,Usage with 2304 space-separated pixel values."""
    rows = []
    seed = 0
    for usage in usages:
        for code in range(len(LABELS)):
            for _ in range(per_class):
                seed += 1
                pixels = " ".join(map(str, face_like(seed).ravel().tolist()))
                rows.append([str(code), pixels, usage])
    if bad_rows:
        rows += [
            ["3", "1 2 3", "Training"],  # too few pixels
            ["x", " ".join(["0"] * 2304), "Training"],  # non-numeric code
            ["9", " ".join(["0"] * 2304), "Training"],  # code out of range
            ["2", " ".join(["300"] * 2304), "Training"],  # pixel out of range
            ["1", "Training"],  # missing column
        ]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", "pixels", "Usage"])
        w.writerows(rows)
    return path


AFFECTNET_HEADER = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
                    "facial_landmarks", "expression", "valence", "arousal"]


def affectnet_official(root: Path, per_code: int = 2, header_on_val: bool = False,
                       bad_rows: bool = False) -> Path:
    """AffectNet's release: Manually_Annotated_file_lists/*.csv + Manually_Annotated_Images/."""
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True, exist_ok=True)
    seed = 1000
    for name in ("training.csv", "validation.csv"):
        rows = []
        for code in range(11):
            for i in range(per_code):
                seed += 1
                rel = f"{seed % 7 + 1}/{name[:3]}_{code}_{i}.jpg"
                image = face_like(seed, 120, 3)
                write_image(root / "Manually_Annotated_Images" / rel, image)
                landmarks = ";".join(f"{v:.2f}" for v in np.linspace(10, 90, 136))
                rows.append([rel, "20", "25", "70", "70", landmarks, str(code), "0.1", "-0.2"])
        if bad_rows:
            rows += [
                ["1/missing.jpg", "20", "20", "50", "50", "", "1", "0", "0"],  # file absent
                ["1/short.jpg", "20", "20"],  # truncated row
                ["1/degenerate.jpg", "20", "20", "0", "50", "", "1", "0", "0"],  # zero width
                ["1/nan.jpg", "a", "20", "50", "50", "", "1", "0", "0"],  # non-numeric box
            ]
        with open(lists / name, "w", newline="") as f:
            w = csv.writer(f)
            if name == "training.csv" or header_on_val:
                w.writerow(AFFECTNET_HEADER)
            w.writerows(rows)
    return root


def class_folders(root: Path, names=LABELS, per_class: int = 3, ext: str = ".png",
                  size: int = 48, channels: int = 1, seed: int = 0) -> Path:
    for c, name in enumerate(names):
        for i in range(per_class):
            write_image(root / name / f"img_{i:04d}{ext}", face_like(seed + c * 100 + i, size, channels))
    return root


def affectnet_export(root: Path, per_class: int = 2, with_relfcs: bool = True) -> Path:
    """The 96x96 AffectNet export: class folders (anger, contempt, ...) plus labels.csv."""
    names = ["anger", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    rows = []
    for c, name in enumerate(names):
        for i in range(per_class):
            rel = f"{name}/image{c * 100 + i:07d}.png"
            write_image(root / rel, face_like(c * 100 + i, 96, 3))
            rows.append([rel, name, "0.5"] if with_relfcs else [rel, name])
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["pth", "label", "relFCs"] if with_relfcs else ["pth", "label"])
        w.writerows(rows)
    return root


def astronaut_path() -> Path:
    return Path(__file__).resolve().parents[1] / "examples" / "astronaut.png"


def grace_hopper_path() -> Path:
    """A real portrait that ships with matplotlib."""
    import matplotlib.cbook

    return Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def face_patch() -> np.ndarray:
    """The astronaut's head and shoulders (the face box is about [177, 67, 270, 160])."""
    image = cv2.imread(str(astronaut_path()))
    return image[30:210, 140:310]


#: the astronaut's face in examples/astronaut.png, x1 y1 x2 y2
ASTRONAUT_FACE = np.array([[177, 67, 270, 160]], np.float64)


def astronaut_closeup(side: int = 624, fill: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's face filling `fill` of a `side` px square, as a webcam or selfie frames
    one, and its box there."""
    photo = cv2.imread(str(astronaut_path()))
    x1, y1, x2, y2 = ASTRONAUT_FACE[0]
    crop_side = (y2 - y1) / fill
    x0, y0 = int((x1 + x2 - crop_side) / 2), int((y1 + y2 - crop_side) / 2)
    crop = photo[y0:y0 + int(crop_side), x0:x0 + int(crop_side)]
    scale = side / crop.shape[0]
    return cv2.resize(crop, None, fx=scale, fy=scale), (ASTRONAUT_FACE - [x0, y0, x0, y0]) * scale


def video_with_faces(path: Path, frames: int = 12, faces: int = 1, fps: float = 10.0) -> Path:
    """A 640x480 mp4 of the real astronaut photo panning slowly; `faces` copies side by side."""
    image = cv2.imread(str(astronaut_path()))
    width = 640 // faces
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (640, 480))
    assert writer.isOpened()
    for i in range(frames):
        x0 = max(0, 225 - width // 2) - 2 * i  # keeps the face (x 177-270) inside each copy
        tile = image[0:480, max(x0, 0):max(x0, 0) + width]
        writer.write(np.hstack([tile] * faces)[:, :640] if faces > 1 else
                     cv2.copyMakeBorder(tile, 0, 0, 0, 640 - tile.shape[1], cv2.BORDER_REPLICATE))
    writer.release()
    return path


def widerface_slice(shared_root: Path, out: Path, images: int = 12, split: str = "train") -> Path:
    """A real WIDER FACE slice: the first images present on disk with their official records."""
    from fd.convert.widerface import parse_annotations
    from fer.readers.base import SkipLog

    ann = shared_root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt"
    src_images = shared_root / f"WIDER_{split}" / "images"
    lines: list[str] = []
    kept = 0
    for name, rows in parse_annotations(ann.read_text(), SkipLog()):
        if kept >= images:
            break
        if not (src_images / name).is_file() or not rows or len(rows) > 40:
            continue
        target = out / f"WIDER_{split}" / "images" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((src_images / name).read_bytes())
        lines += [name, str(len(rows))] + [" ".join(str(int(v)) for v in r) for r in rows]
        kept += 1
    split_dir = out / "wider_face_split"
    split_dir.mkdir(parents=True, exist_ok=True)
    (split_dir / f"wider_face_{split}_bbx_gt.txt").write_text("\n".join(lines) + "\n")
    return out


def jpeg(path: Path, width: int, height: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    return write_image(path, rng.integers(0, 255, (height, width, 3), np.uint8))


def widerface_tree(root: Path, split: str, records: list[tuple[str, list[str] | str, bool]],
                   size: tuple[int, int] = (200, 150)) -> Path:
    """WIDER FACE layout from (image name, body lines or raw text, image present on disk)."""
    lines = []
    for i, (name, body, present) in enumerate(records):
        if present:
            jpeg(root / f"WIDER_{split}" / "images" / name, *size, seed=i)
        lines.append(name)
        lines += body if isinstance(body, list) else [body]
    (root / "wider_face_split").mkdir(parents=True, exist_ok=True)
    (root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt").write_text("\n".join(lines) + "\n")
    return root


def fddb_tree(root: Path, folds: dict[int, list[tuple[str, list[str]]]],
              size: tuple[int, int] = (300, 250)) -> Path:
    """FDDB layout: FDDB-folds/FDDB-fold-NN[-ellipseList].txt and originalPics/<name>.jpg."""
    (root / "FDDB-folds").mkdir(parents=True, exist_ok=True)
    for fold, records in folds.items():
        names, lines = [], []
        for name, rows in records:
            names.append(name)
            lines += [name, str(len(rows)), *rows]
            if not name.endswith("absent"):
                jpeg(root / "originalPics" / f"{name}.jpg", *size)
        (root / "FDDB-folds" / f"FDDB-fold-{fold:02d}.txt").write_text("\n".join(names) + "\n")
        (root / "FDDB-folds" / f"FDDB-fold-{fold:02d}-ellipseList.txt").write_text(
            "\n".join(lines) + "\n")
    return root


def pts_text(points: list[tuple[float, float]]) -> str:
    body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points)
    return f"version: 1\nn_points: {len(points)}\n{{\n{body}\n}}\n"


def lfpw_tree(root: Path, count: int = 3) -> Path:
    """lfpw/{trainset,testset}/<name>.png + <name>.pts with 68 landmarks inside a 200x200 image."""
    rng = np.random.default_rng(1)
    for split in ("trainset", "testset"):
        for i in range(count):
            stem = root / "lfpw" / split / f"image_{i:04d}"
            write_image(stem.with_suffix(".png"), rng.integers(0, 255, (200, 200, 3), np.uint8))
            pts = [(60 + 80 * rng.random(), 80 + 90 * rng.random()) for _ in range(66)]
            pts += [(60.0, 80.0), (140.0, 170.0)]  # pin the extent: x 60-140, y 80-170
            stem.with_suffix(".pts").write_text(pts_text(pts))
    return root


def signal_when_marked(script: str, args: list[str], mark: Path, sig: int, env: dict[str, str],
                       cwd: Path, start_timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `python -c script args` and send `sig` once the script has created `mark` (it is
    halfway through its work); return what it printed and its exit status."""
    import signal

    # A suite started in the background (`make test &`) inherits SIGINT ignored, and Python then
    # never raises KeyboardInterrupt: give the child the default disposition a terminal gives.
    proc = subprocess.Popen([sys.executable, "-c", script, *map(str, args)], cwd=cwd,
                            env={**os.environ, "FER_TEST_MARK": str(mark), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + start_timeout
        while not mark.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert mark.exists(), proc.communicate(timeout=10)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def photo_folder(folder: Path, count: int) -> Path:
    """`count` JPEGs in two subfolders: every third the real astronaut (shifted a little, so each
    is a different file), the others structured non-faces."""
    astronaut = cv2.imread(str(astronaut_path()))
    for i in range(count):
        image = face_like(i, 160, 3) if i % 3 else astronaut[:, i % 40:]
        write_image(folder / f"part{i % 2}" / f"img_{i:03d}.jpg", image)
    return folder
