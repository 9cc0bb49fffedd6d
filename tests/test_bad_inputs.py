"""The bad-input table (issues 12 and 15): one row per bad or odd input, each run through the real
command: fer-detect, fer-train, fer-prep, fer-eval, fd-prep and fd-eval.

Every row checks the exit status (2 bad option/config/output path, 1 fatal, 3 some inputs failed,
0 fine), that stderr names the problem in one line without a traceback, that a refused command
(2 or 1) changed no file, and, for a batch, that the good photo beside the bad input was still
processed; a photo row can also check that its face was boxed where it is (EXIF rotation, odd
modes and formats). Rows run in-process through click's CliRunner with the shipped ONNX models;
add rows for another command by naming it in COMMANDS. A row that finds a defect in another
stage's files is marked as a strict xfail naming it, so it turns red once fixed. Defects that
need several steps (reruns, two writers, memory, the training cache, a signal halfway through
fd-prep) follow the table; fer-detect's signals are in tests/pipeline/test_interrupts.py."""

from __future__ import annotations

import importlib
import json
import re
import shutil
import signal
import struct
import tracemalloc
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fer.labels import LABELS
from pipeline.models import default_face_model, default_fer_model
from tests import fixtures

COMMANDS = {"fer-detect": "pipeline.cli:main", "fer-train": "fer.cli:train_cmd",
            "fer-eval": "fer.cli:eval_cmd", "fer-prep": "fer.cli:prep_cmd",
            "fd-prep": "fd.cli:prep_cmd", "fd-eval": "fd.cli:eval_cmd"}
FACE_MODEL, FER_MODEL = str(default_face_model()), str(default_fer_model())
SUMMARY = re.compile(r"^fer-detect: \d+ input\(s\) failed")


# --- bad inputs, made on the spot ------------------------------------------------------------

def thin_png(tmp: Path) -> None:
    """Valid, 2x5000: the detector's letterbox once resized it to 0 px and OpenCV raised."""
    cv2.imwrite(str(tmp / "thin.png"), np.full((2, 5000, 3), 200, np.uint8))


def huge_png(tmp: Path, side: int = 20000) -> None:
    """A valid all-black 1-bit PNG of side x side: 50 kB on disk, 400 megapixels, 1.2 GB once
    OpenCV decodes it to BGR (it cannot decode a PNG at reduced scale)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row, z = b"\0" * (1 + (side + 7) // 8), zlib.compressobj(9)
    body = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    (tmp / "huge.png").write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                                   + chunk(b"IDAT", body) + chunk(b"IEND", b""))


def truncated_video(tmp: Path) -> None:
    """An MJPG AVI whose header declares 40 frames, cut in half: about 20 can be read."""
    path = tmp / "cut.avi"
    image = cv2.resize(cv2.imread(str(fixtures.astronaut_path())), (160, 120))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (160, 120))
    for i in range(40):
        writer.write(np.roll(image, i, axis=1))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def folder_with(name: str, write: Callable[[Path], None]) -> Callable[[Path], None]:
    """photos/ holding the good photo and one more file."""
    def make(tmp: Path) -> None:
        (tmp / "photos").mkdir()
        shutil.copy(tmp / "good.png", tmp / "photos" / "good.png")
        write(tmp / "photos" / name)
    return make


def gif(path: Path) -> None:
    frames = [Image.fromarray(cv2.cvtColor(fixtures.face_patch(), cv2.COLOR_BGR2RGB))] * 2
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)


def earlier_output(tmp: Path) -> None:
    """o/good.png, as an earlier `fer-detect good.png --out o` left it."""
    (tmp / "o").mkdir()
    shutil.copy(tmp / "good.png", tmp / "o" / "good.png")


def config(text: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / "bad.yaml").write_text(text)


def fer_model_copy(tmp: Path) -> None:
    """The shipped expression model copied (a row that could overwrite it never gets the real one)."""
    shutil.copy(FER_MODEL, tmp / "m.onnx")
    shutil.copy(Path(FER_MODEL).with_name("labels.json"), tmp / "labels.json")
    fixtures.class_folders(tmp / "d", LABELS, per_class=1)


#: Where the shipped detector boxes the astronaut's face in examples/astronaut.png (x1 y1 x2 y2).
ASTRONAUT_FACE = (181, 63, 269, 179)


def photo(name: str, save: Callable[[Image.Image, Path], None]) -> Callable[[Path], None]:
    """{tmp}/NAME: the astronaut photo written by `save` (a mode, a format, a rotation ...)."""
    def make(tmp: Path) -> None:
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        save(Image.open(fixtures.astronaut_path()).convert("RGB"), tmp / name)
    return make


def exif_rotated(image: Image.Image, path: Path) -> None:
    """Stored turned a quarter left, with EXIF orientation 6 ('turn it right to view'): shown
    upright, the face is where it is in the original."""
    exif = Image.Exif()
    exif[0x0112] = 6
    image.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif)


def sixteen_bit(image: Image.Image, path: Path) -> None:
    bgr = cv2.cvtColor(np.asarray(image), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(path), bgr.astype(np.uint16) * 257)


def truncated_jpeg(tmp: Path) -> None:
    image = Image.open(fixtures.astronaut_path()).convert("RGB")
    image.save(tmp / "cut.jpg", quality=90)
    data = (tmp / "cut.jpg").read_bytes()
    (tmp / "cut.jpg").write_bytes(data[:len(data) // 2])


def symlink_loop(tmp: Path) -> None:
    """photos/sub/up -> photos: a folder walk that follows links would never end."""
    (tmp / "photos" / "sub").mkdir(parents=True)
    shutil.copy(fixtures.astronaut_path(), tmp / "photos" / "sub" / "x.png")
    (tmp / "photos" / "sub" / "up").symlink_to("..", target_is_directory=True)


def zero_frame_video(tmp: Path) -> None:
    """What a VideoWriter leaves when no frame is ever written: a container with no frame."""
    writer = cv2.VideoWriter(str(tmp / "none.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 64))
    writer.release()


def jpeg_named_mp4(tmp: Path) -> None:
    Image.open(fixtures.astronaut_path()).convert("RGB").save(tmp / "photo.mp4", format="JPEG")


def random_bytes(name: str, size: int = 5000) -> Callable[[Path], None]:
    return lambda tmp: (tmp / name).write_bytes(np.random.default_rng(0).bytes(size))


def non_model_keras(tmp: Path) -> None:
    """Text named m.keras, with the labels.json a real one has beside it, so Keras gets to it."""
    (tmp / "m.keras").write_text("not a model")
    shutil.copy(Path(FER_MODEL).with_name("labels.json"), tmp / "labels.json")


def empty_class_folder(tmp: Path) -> None:
    data = fixtures.class_folders(tmp / "d", LABELS, per_class=2)
    for image in (data / "disgust").iterdir():
        image.unlink()


def csv_text(text: str) -> Callable[[Path], None]:
    return lambda tmp: (tmp / "f.csv").write_text(text)


def wider_lines(tmp: Path) -> None:
    """A WIDER FACE tree whose annotation file has a malformed line, a face count larger than the
    lines that follow and a negative width, between images annotated well."""
    def row(x: int, y: int, w: object, h: int) -> str:
        return f"{x} {y} {w} {h} 0 0 0 0 0 0"

    fixtures.widerface_tree(tmp / "w", "train", [
        ("e/good.jpg", ["1", row(10, 10, 30, 40)], True),
        ("e/malformed.jpg", ["1", row(10, 10, "x", 40)], True),
        ("e/count.jpg", ["3", row(10, 10, 30, 40), row(60, 40, 20, 20)], True),
        ("e/negative.jpg", ["1", row(10, 10, -30, 40)], True),
        ("e/good2.jpg", ["1", row(12, 12, 30, 40)], True),
    ])


def face_dataset(tmp: Path) -> None:
    """{tmp}/faces: a small fd-prep dataset with validation images, for fd-eval."""
    from fd.cli import prep_cmd

    fixtures.widerface_tree(tmp / "w", "train", [
        (f"e/{i}.jpg", ["1", f"{10 + i} 20 40 50 0 0 0 0 0 0"], True) for i in range(6)])
    made = CliRunner().invoke(prep_cmd, ["--widerface", str(tmp / "w"), "--out", str(tmp / "faces"),
                                         "--val-fraction", "0.5", "--no-progress"])
    assert made.exit_code == 0, made.output


def with_file(make: Callable[[Path], None], name: str, content: bytes = b"x") -> Callable[[Path], None]:
    def both(tmp: Path) -> None:
        make(tmp)
        (tmp / name).write_bytes(content)
    return both


def fd_prep_counts(tmp: Path, result) -> None:
    """Every bad line is counted, and every image with a good annotation is written."""
    assert "skipped: 1 malformed line, 1 count mismatch, 1 degenerate box" in result.stdout
    report = json.loads((tmp / "faces" / "prep_report.json").read_text())
    assert report["sources"]["widerface"]["skipped"]["by_reason"] == {
        "malformed line": 1, "count mismatch": 1, "degenerate box": 1}
    written = {p.name for p in (tmp / "faces" / "images").rglob("*.jpg")}
    assert {"widerface__e_good.jpg", "widerface__e_good2.jpg"} <= written


def xfail_fd(reason: str, stage: str = "fd/"):
    """A row the table found failing in fd/ or fer/ (owned by those stages; reported, not fixed
    here): strict, so the row turns red once the fix lands and the mark can go."""
    return pytest.mark.xfail(strict=True, reason=f"{stage} defect, reported: {reason}")


# --- the table -------------------------------------------------------------------------------

@dataclass
class Row:
    id: str
    command: str
    args: list[str]  # "{tmp}" is the row's own folder, "{good}" a good photo in it
    exit: int
    says: str  # the one problem line on stderr contains this ("" for none)
    setup: Callable[[Path], object] | None = None
    good: str | None = None  # a source whose record must be in {tmp}/out.jsonl
    records: int | None = None  # how many records {tmp}/out.jsonl must hold
    face: str | None = None  # a source whose one face must be boxed on the astronaut's face
    check: Callable[[Path, object], None] | None = None  # more checks on the folder and result
    marks: tuple = ()  # pytest marks (xfail for a defect reported to another stage)


DETECT = ["--json", "{tmp}/out.jsonl"]
BATCH = [*DETECT, "{good}"]
OPTION = ["{good}", *DETECT]

ROWS = [
    # data loss: outputs that would replace an input or an earlier result are refused up front
    Row("json-names-an-input", "fer-detect", ["{good}", "{tmp}/b.png", "--json", "{good}"], 2,
        "--json {good} is one of the inputs", lambda t: shutil.copy(t / "good.png", t / "b.png")),
    Row("json-exists", "fer-detect", OPTION, 2, "add --exist-ok to replace it or --append",
        lambda t: (t / "out.jsonl").write_text("{}\n")),
    Row("json-is-a-folder", "fer-detect", ["{good}", "--json", "{tmp}/d"], 2, "is a folder",
        lambda t: (t / "d").mkdir()),
    Row("append-without-file", "fer-detect", ["{good}", "--json", "-", "--append"], 2,
        "--append adds to a --json FILE"),
    Row("out-exists", "fer-detect", ["{good}", "--out", "{tmp}/o"], 2,
        "already exists; add --exist-ok", earlier_output),
    Row("out-is-the-input-folder", "fer-detect", ["{tmp}/photos", "--out", "{tmp}/photos"], 2,
        "is the input folder itself", folder_with("x.txt", lambda p: p.write_text("notes"))),
    Row("out-over-an-input", "fer-detect", ["{tmp}/o/good.png", "--out", "{tmp}/o", "--exist-ok"],
        2, "over the input itself", earlier_output),
    # one bad input never stops a batch; the good photo after it is processed
    # (fd.predict.letterbox keeps at least one row, so the strip is analysed, not failed)
    Row("2x5000-png", "fer-detect", ["{tmp}/thin.png", *BATCH], 0, "", thin_png, good="{good}",
        records=2),
    Row("huge-png-refused", "fer-detect", ["{tmp}/huge.png", *BATCH], 3,
        "huge.png: 20000x20000 pixels is too large to decode", huge_png, good="{good}"),
    Row("truncated-video", "fer-detect", ["{tmp}/cut.avi", *BATCH, "--whole-image"], 3,
        "cut.avi: only 20 of the 40 frames its header declares", truncated_video, good="{good}",
        records=21),
    Row("empty-file", "fer-detect", ["{tmp}/e.jpg", *BATCH], 3, "e.jpg: empty file",
        lambda t: (t / "e.jpg").write_bytes(b""), good="{good}"),
    Row("text-as-png", "fer-detect", ["{tmp}/t.png", *BATCH], 3, "t.png: not a readable image",
        lambda t: (t / "t.png").write_text("hello"), good="{good}"),
    Row("heic-in-folder", "fer-detect", ["{tmp}/photos", *DETECT], 3,
        "x.heic: HEIC photos cannot be decoded here",
        folder_with("x.heic", lambda p: p.write_bytes(b"\0\0\0\x18ftypheic")),
        good="{tmp}/photos/good.png"),
    Row("gif-in-folder", "fer-detect", ["{tmp}/photos", *DETECT], 0, "", folder_with("a.gif", gif),
        good="{tmp}/photos/a.gif", records=2),
    # every option checked before work starts: one line, exit 2
    *[Row(f"option{a}={v}", "fer-detect", [*OPTION, a, v], 2, f"Invalid value for '{a}'")
      for a, v in [("--conf", "1.5"), ("--conf", "-0.1"), ("--iou", "2"), ("--imgsz", "-5"),
                   ("--imgsz", "0"), ("--imgsz", "100000"), ("--imgsz", "big"),
                   ("--smoothing", "-0.5"), ("--smoothing", "1.5"), ("--smoothing", "1"),
                   ("--margin", "-1"), ("--margin", "50"), ("--max-det", "0"),
                   ("--max-frames", "0"), ("--duration", "0"), ("--min-face", "-1"),
                   ("--min-face", "big")]],
    Row("option--conf=nan", "fer-detect", [*OPTION, "--conf", "nan"], 2,
        "conf must be a number from 0 to 1, got nan"),
    Row("imgsz-rounded-up", "fer-detect", [*OPTION, "--imgsz", "100"], 0,
        "imgsz 100 is not a multiple of the detector's stride 32; using 128", good="{good}"),
    # every config value checked for type and range: exit 2
    *[Row(f"config-{text.split(':')[0]}", "fer-detect", [*OPTION, "--config", "{tmp}/bad.yaml"], 2,
          says, config(text))
      for text, says in [("conf: high", "conf must be a number from 0 to 1, got 'high'"),
                         ("imgsz: 1.5", "imgsz must be a whole number"),
                         ("tta: 'yes'", "tta must be true or false"),
                         ("zoom_out: 3", "zoom_out must be true or false"),
                         ("smoothing: 3", "smoothing must be a number from 0 up to, not including, 1"),
                         ("detector: mtcnn", "detector must be one of auto, yolo, haar, whole"),
                         ("max_det: true", "max_det must be a whole number"),
                         ("margin: [1]", "margin must be a number"),
                         ("fer_model: 3", "fer_model must be a file path"),
                         ("detecter: haar", "unknown setting 'detecter'"),
                         ("- a list", "must hold a mapping")]],
    Row("config-missing", "fer-detect", [*OPTION, "--config", "{tmp}/nope.yaml"], 2,
        "config file {tmp}/nope.yaml not found"),
    # a model given for the wrong stage is refused when loaded: exit 1
    Row("face-model-as-fer-model", "fer-detect", [*OPTION, "--fer-model", FACE_MODEL], 1,
        "cannot classify 48x48x1 face crops"),
    Row("fer-model-as-face-model", "fer-detect", [*OPTION, "--fd-model", FER_MODEL], 1,
        "does not look like a YOLO detector"),
    # the training commands' options
    *[Row(f"fer-train{a}={v}", "fer-train", ["--data", "{tmp}/none", "--out", "{tmp}/run", a, v],
          2, f"Invalid value for '{a}'")
      for a, v in [("--epochs", "0"), ("--batch-size", "0"), ("--input-size", "0"),
                   ("--input-size", "4000"), ("--attention-heads", "-1"),
                   ("--max-per-class", "0")]],
    Row("fer-prep--input-size=0", "fer-prep", ["--data", "{tmp}/none", "--input-size", "0"], 2,
        "Invalid value for '--input-size'"),
    Row("fer-eval-json-over-model", "fer-eval", ["--model", "{tmp}/m.onnx", "--data", "{tmp}/d",
                                                 "--json", "{tmp}/m.onnx", "--cache-dir",
                                                 "{tmp}/cache"], 2,
        "--json {tmp}/m.onnx is --model", fer_model_copy),
    Row("fer-eval-confusion-suffix", "fer-eval", ["--model", "{tmp}/m.onnx", "--data", "{tmp}/d",
                                                  "--confusion", "{tmp}/cm.xyz", "--cache-dir",
                                                  "{tmp}/cache"], 2,
        "--confusion {tmp}/cm.xyz: use one of the suffixes", fer_model_copy),
    # files that are not what their name says, or hardly anything at all (issue 12)
    Row("random-bytes", "fer-detect", ["{tmp}/r.jpg", *BATCH], 3, "r.jpg: not a readable image",
        random_bytes("r.jpg"), good="{good}"),
    Row("truncated-jpeg", "fer-detect", ["{tmp}/cut.jpg", *BATCH], 3,
        "cut.jpg: not a readable image (corrupt, truncated", truncated_jpeg, good="{good}"),
    Row("1x1-image", "fer-detect", ["{tmp}/one.png", *BATCH], 0, "",
        photo("one.png", lambda im, p: im.resize((1, 1)).save(p)), good="{tmp}/one.png", records=2),
    Row("zero-frame-video", "fer-detect", ["{tmp}/none.mp4", *BATCH], 3, "none.mp4: cannot open video",
        zero_frame_video, good="{good}"),
    Row("jpeg-named-mp4", "fer-detect", ["{tmp}/photo.mp4", *BATCH], 0, "", jpeg_named_mp4,
        records=2, face="{tmp}/photo.mp4"),  # FFmpeg reads it as a one-frame video
    # every kind of photo is converted, and its face found where it is
    *[Row(f"photo-{name}", "fer-detect", [f"{{tmp}}/{name}", *DETECT], 0, "", photo(name, save),
          face=f"{{tmp}}/{name}")
      for name, save in [("16bit.png", sixteen_bit),
                         ("rgba.png", lambda im, p: im.convert("RGBA").save(p)),
                         ("cmyk.jpg", lambda im, p: im.convert("CMYK").save(p)),
                         ("palette.png", lambda im, p: im.convert("P").save(p)),
                         ("gray.jpg", lambda im, p: im.convert("L").save(p)),
                         ("exif-rotated.jpg", exif_rotated),
                         ("pages.tiff", lambda im, p: im.save(p, save_all=True,
                                                              append_images=[im.convert("L")])),
                         ("photo.webp", lambda im, p: im.save(p)),
                         ("animated.gif", lambda im, p: im.save(p, save_all=True, duration=100,
                                                                append_images=[im.rotate(10)])),
                         ("my photos/fötö 写真.png", lambda im, p: im.save(p))]],
    Row("non-ascii-out", "fer-detect", ["{tmp}/my photos/fötö 写真.png", "--out", "{tmp}/o"], 0, "",
        photo("my photos/fötö 写真.png", lambda im, p: im.save(p)),
        check=lambda tmp, r: (tmp / "o" / "fötö 写真.png").is_file() or pytest.fail(r.output)),
    Row("symlink-loop-in-folder", "fer-detect", ["{tmp}/photos", *DETECT], 0, "", symlink_loop,
        face="{tmp}/photos/sub/x.png", records=1),
    # --camera: absent, negative, not a number
    Row("camera-without-value", "fer-detect", ["--camera"], 2, "'--camera' requires an argument"),
    Row("camera-negative", "fer-detect", ["--camera", "-1", "--no-show"], 2,
        "--camera -1: camera indexes start at 0"),
    Row("camera-not-a-number", "fer-detect", ["--camera", "front", "--no-show"], 2,
        "--camera front: not a camera index (0, 1, ...), a stream URL"),
    # model options given the other stage's model, a corrupt ONNX, a file that is no model
    Row("corrupt-onnx-as-fer-model", "fer-detect", [*OPTION, "--fer-model", "{tmp}/m.onnx"], 1,
        "{tmp}/m.onnx is not a loadable ONNX model", random_bytes("m.onnx")),
    Row("corrupt-onnx-as-face-model", "fer-detect", [*OPTION, "--fd-model", "{tmp}/m.onnx"], 1,
        "face model {tmp}/m.onnx is not a loadable ONNX model", random_bytes("m.onnx")),
    Row("non-model-keras", "fer-detect", [*OPTION, "--fer-model", "{tmp}/m.keras"], 1,
        "{tmp}/m.keras is not a loadable Keras model", non_model_keras),
    Row("face-pt-as-fer-model", "fer-detect", [*OPTION, "--fer-model", "{tmp}/face.pt"], 1,
        "unsupported FER model type '.pt'", lambda t: (t / "face.pt").write_bytes(b"x")),
    Row("fer-keras-as-face-model", "fer-detect", [*OPTION, "--fd-model", "{tmp}/fer.keras"], 1,
        "unsupported type '.keras'", lambda t: (t / "fer.keras").write_bytes(b"x")),
    # training data: an empty class, a CSV without its columns or with short pixel rows
    # (fer-prep reads and caches a dataset exactly as fer-train does, without the minutes of training)
    Row("fer-prep-empty-class-folder", "fer-prep", ["--data", "{tmp}/d", "--cache-dir", "{tmp}/cache"],
        0, "", empty_class_folder,
        check=lambda tmp, r: "'disgust': 0" in r.output or pytest.fail(r.output)),
    Row("fer-train-csv-missing-columns", "fer-train",
        ["--data", "{tmp}/f.csv", "--out", "{tmp}/run", "--cache-dir", "{tmp}/cache"], 1,
        "f.csv: unrecognised CSV header ['emotion', 'Usage']", csv_text("emotion,Usage\n3,Training\n")),
    Row("fer-prep-csv-short-pixel-rows", "fer-prep", ["--data", "{tmp}/f.csv", "--cache-dir",
                                                      "{tmp}/cache"], 0, "",
        lambda t: fixtures.fer2013_csv(t / "f.csv", per_class=1, usages=("Training",), bad_rows=True),
        check=lambda tmp, r: ("skipped 5: 4 malformed row, 1 unknown label code" in r.output
                              or pytest.fail(r.output))),
    # fd-prep: bad WIDER FACE lines are counted and the good images written; paths
    Row("fd-prep-bad-wider-lines", "fd-prep", ["--widerface", "{tmp}/w", "--out", "{tmp}/faces",
                                               "--no-progress"], 0, "", wider_lines,
        check=fd_prep_counts),
    # a misspelt held-out event would validate on random images of the training scenes
    Row("fd-prep-unknown-val-events", "fd-prep", ["--widerface", "{tmp}/w", "--out", "{tmp}/faces",
                                                  "--val-events", "Nope", "--no-progress"], 1,
        "--val-events Nope: no image of such an event or source", wider_lines),
    Row("fd-prep-missing-widerface", "fd-prep", ["--widerface", "{tmp}/nope", "--out", "{tmp}/faces",
                                                  "--no-progress"],
        1, "wider_face_train_bbx_gt.txt not found"),
    Row("fd-prep-missing-fddb", "fd-prep", ["--fddb", "{tmp}/nope", "--out", "{tmp}/faces",
                                            "--no-progress"], 1, "{tmp}/nope"),
    Row("fd-prep-out-is-a-file", "fd-prep", ["--widerface", "{tmp}/w", "--out", "{tmp}/afile"], 2,
        "'{tmp}/afile' is a file", with_file(wider_lines, "afile")),
    # fd-eval: paths and models
    Row("fd-eval-missing-data", "fd-eval", ["--model", FACE_MODEL, "--data", "{tmp}/nope", "--json",
                                            "{tmp}/e.json"], 1, "{tmp}/nope does not exist"),
    Row("fd-eval-missing-model", "fd-eval", ["--model", "{tmp}/none.onnx", "--data", "{tmp}/faces",
                                             "--json", "{tmp}/e.json"], 1,
        "face model {tmp}/none.onnx not found", face_dataset),
    Row("fd-eval-fer-model", "fd-eval", ["--model", FER_MODEL, "--data", "{tmp}/faces", "--json",
                                         "{tmp}/e.json"], 1, "does not look like a YOLO detector",
        face_dataset),
    Row("fd-eval-corrupt-onnx", "fd-eval", ["--model", "{tmp}/m.onnx", "--data", "{tmp}/faces",
                                            "--json", "{tmp}/e.json"], 1,
        "face model {tmp}/m.onnx is not a loadable ONNX model",
        lambda t: (face_dataset(t), random_bytes("m.onnx")(t))),
    Row("fd-eval-no-validation-images", "fd-eval", ["--model", FACE_MODEL, "--data", "{tmp}/empty",
                                                    "--json", "{tmp}/e.json"], 1, "no val images",
        lambda t: (t / "empty").mkdir()),
    Row("fd-eval-data-is-a-file", "fd-eval", ["--model", FACE_MODEL, "--data", "{tmp}/afile", "--json",
                                              "{tmp}/e.json"], 1, "{tmp}/afile",
        lambda t: (t / "afile").write_text("x")),
    Row("fd-eval-json-is-a-folder", "fd-eval", ["--model", FACE_MODEL, "--data", "{tmp}/faces",
                                                "--json", "{tmp}/faces"], 2, "is a directory",
        face_dataset),
]


def _command(name: str):
    module, attr = COMMANDS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _iou(a, b) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / area if area else 0.0


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id, marks=r.marks) for r in ROWS])
def test_bad_input_row(row: Row, tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    shutil.copy(fixtures.astronaut_path(), good)
    if row.setup:
        row.setup(tmp_path)

    def fill(text: str) -> str:
        return text.replace("{tmp}", str(tmp_path)).replace("{good}", str(good))

    before = _snapshot(tmp_path)
    result = CliRunner().invoke(_command(row.command), [fill(a) for a in row.args])
    stderr = result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        f"crashed: {result.exception!r}"
    assert "Traceback" not in result.output
    assert result.exit_code == row.exit, result.output
    problems = [line for line in stderr.splitlines() if line.strip() and not SUMMARY.match(line)]
    if row.exit != 0:
        assert len(problems) == 1, stderr  # one line names the problem
        assert fill(row.says) in problems[0], stderr
    elif row.says:
        assert fill(row.says) in stderr
    if row.exit in (1, 2):  # refused before any work: nothing written, nothing replaced
        assert _snapshot(tmp_path) == before
    if row.exit == 3:
        assert SUMMARY.match(stderr.splitlines()[-1])
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()] \
        if row.good or row.records or row.face else []
    if row.good:
        assert fill(row.good) in {r["source"] for r in records}
    if row.records is not None:
        assert len(records) == row.records
    if row.face:
        (mine,) = [r for r in records if r["source"] == fill(row.face)]
        (face,) = mine["faces"]
        assert _iou(face["box"], ASTRONAUT_FACE) > 0.7, face  # on the face, in upright pixels
        assert face["emotion"] == "happy"
    if row.check:
        row.check(tmp_path, result)


# --- defects that take several steps -----------------------------------------------------------

def detect(*args) -> object:
    from pipeline.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_any_error_inside_analysis_is_that_inputs_failure(tmp_path, monkeypatch):
    import pipeline.run

    # what photos (analyze) and video detection frames (track_frame) both run
    real = pipeline.run.FacePipeline._detect_and_classify

    def detect_and_classify(self, image, source, frame, *args, **kwargs):
        if source.endswith("bad.png") or frame == 3:
            raise RuntimeError("model exploded\nwith a second line")
        return real(self, image, source, frame, *args, **kwargs)

    monkeypatch.setattr(pipeline.run.FacePipeline, "_detect_and_classify", detect_and_classify)
    bad, good = tmp_path / "bad.png", tmp_path / "good.png"
    for path in (bad, good):
        shutil.copy(fixtures.astronaut_path(), path)
    video = fixtures.video_with_faces(tmp_path / "clip.mp4", frames=6)
    out, report = tmp_path / "out", tmp_path / "r.jsonl"
    result = detect(bad, video, good, "--whole-image", "--json", report, "--out", out)
    assert result.exit_code == 3, result.output
    assert result.stderr.splitlines() == [
        f"fer-detect: skipped {bad}: analysis failed (RuntimeError: model exploded)",
        f"fer-detect: skipped {video}: analysis failed (RuntimeError: model exploded)",
        "fer-detect: 2 input(s) failed, 1 processed"]
    sources = [json.loads(line)["source"] for line in report.read_text().splitlines()]
    assert sources == [str(video)] * 3 + [str(good)]  # frames 0-2 of the video, then the photo
    assert json.loads((out / "clip_timeline.json").read_text())["frames"] == 3


def test_out_mirrors_the_tree_skips_itself_and_never_piles_up_copies(tmp_path):
    photos = tmp_path / "photos"
    for sub in ("a", "b"):
        (photos / sub).mkdir(parents=True)
        shutil.copy(fixtures.astronaut_path(), photos / sub / "x.png")
    out, report = photos / "annotated", tmp_path / "r.jsonl"
    first = detect(photos, "--out", out, "--json", report, "--whole-image")
    assert first.exit_code == 0, first.output
    assert {p.relative_to(out).as_posix() for p in out.rglob("*")} == {"a", "b", "a/x.png", "b/x.png"}
    stamp = (out / "a" / "x.png").stat().st_mtime_ns

    again = detect(photos, "--out", out, "--json", report, "--whole-image")
    assert again.exit_code == 2 and "already exists" in again.stderr
    assert (out / "a" / "x.png").stat().st_mtime_ns == stamp

    replaced = detect(photos, "--out", out, "--json", report, "--whole-image", "--exist-ok")
    assert replaced.exit_code == 0, replaced.output
    sources = sorted(json.loads(line)["source"] for line in report.read_text().splitlines())
    assert sources == [str(photos / "a" / "x.png"), str(photos / "b" / "x.png")]  # not its own copies
    assert {p.name for p in tmp_path.rglob("*")} == {"photos", "a", "b", "x.png", "annotated", "r.jsonl"}


def test_video_outputs_are_refused_then_replaced(tmp_path):
    video = fixtures.video_with_faces(tmp_path / "clip.mp4", frames=3)
    out = tmp_path / "out"
    assert detect(video, "--out", out, "--whole-image").exit_code == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"clip_fer.mp4", "clip_timeline.json", "clip_summary.csv", "clip_timeline.png"}
    assert detect(video, "--out", out, "--whole-image").exit_code == 2
    assert detect(video, "--out", out, "--whole-image", "--exist-ok").exit_code == 0
    assert {p.name for p in out.iterdir()} == names  # replaced, no clip_fer_1.mp4


def test_json_append_keeps_and_exist_ok_replaces(tmp_path):
    report = tmp_path / "r.jsonl"
    report.write_text('{"source": "earlier"}\n')
    appended = detect(fixtures.astronaut_path(), "--json", report, "--append")
    assert appended.exit_code == 0, appended.output
    assert [json.loads(x)["source"] for x in report.read_text().splitlines()] == \
        ["earlier", str(fixtures.astronaut_path())]
    replaced = detect(fixtures.astronaut_path(), "--json", report, "--exist-ok")
    assert replaced.exit_code == 0
    assert [json.loads(x)["source"] for x in report.read_text().splitlines()] == \
        [str(fixtures.astronaut_path())]


def _record(source: str, i: int):
    from pipeline.records import FrameResult

    return FrameResult(source=source, frame=i, width=1, height=1, faces=[])


def test_two_writers_of_one_json_file_leave_whole_lines(tmp_path):
    from pipeline.sinks import JsonlSink

    target = tmp_path / "r.jsonl"
    first, second = JsonlSink(str(target)), JsonlSink(str(target))  # two runs, one --json file
    for i in range(50):
        first.write(_record("a", i))
        second.write(_record("a much longer source name", i))
    first.close()
    second.close()
    lines = [json.loads(x) for x in target.read_text().splitlines()]  # every line whole
    assert [r["source"] for r in lines] == ["a much longer source name"] * 50  # the last run wins

    shared = [JsonlSink(str(target), append=True) for _ in range(2)]
    for i in range(50):
        for sink, name in zip(shared, ("x", "a much longer y"), strict=True):
            sink.write(_record(name, i))
    for sink in shared:
        sink.close()
    lines = [json.loads(x) for x in target.read_text().splitlines()]
    assert len(lines) == 150 and sum(r["source"] == "x" for r in lines) == 50


def test_a_crash_part_way_keeps_the_previous_json_file(tmp_path):
    from pipeline.sinks import JsonlSink

    target = tmp_path / "r.jsonl"
    target.write_text('{"source": "earlier"}\n')
    sink = JsonlSink(str(target))
    sink.write(_record("new", 0))
    assert target.read_text() == '{"source": "earlier"}\n'  # nothing replaced mid-run
    sink.close(commit=False)  # what a crash does
    assert target.read_text() == '{"source": "earlier"}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["r.jsonl"]


def test_a_large_margin_allocates_no_gigabytes(tmp_path):
    big = tmp_path / "big.jpg"
    cv2.imwrite(str(big), cv2.resize(cv2.imread(str(fixtures.astronaut_path())), (3000, 3000)))
    tracemalloc.start()
    try:
        result = detect(big, "--whole-image", "--margin", 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.output
    assert peak < 200e6  # the padded 15000 px crop alone would be 675 MB


def test_a_changed_image_invalidates_its_cached_crop(tmp_path):
    from fer.cli import prep_cmd

    data, cache = fixtures.class_folders(tmp_path / "d", LABELS, per_class=1), tmp_path / "cache"
    args = ["--data", str(data), "--cache-dir", str(cache)]
    first = CliRunner().invoke(prep_cmd, args)
    image = sorted(data.rglob("*.png"))[0]
    fixtures.write_image(image, 255 - cv2.imread(str(image), cv2.IMREAD_GRAYSCALE))  # same name
    second = CliRunner().invoke(prep_cmd, args)
    assert first.exit_code == 0 and second.exit_code == 0, second.output
    folders = [line.split(" faces in ")[1] for r in (first, second) for line in r.output.splitlines()
               if " faces in " in line]
    assert folders[0] != folders[1]  # rebuilt, not the stale crop


SLOW_FD_PREP = """
import os, sys, time
import fd.convert.widerface as widerface

real = widerface.read_widerface


def slow(*args, **kwargs):
    for i, record in enumerate(real(*args, **kwargs)):
        if i == 5:
            open(os.environ["FER_TEST_MARK"], "w").close()  # the test signals from here on
        time.sleep(0.1)
        yield record


widerface.read_widerface = slow
from fd.cli import prep_cmd
prep_cmd(sys.argv[1:])
"""


@pytest.mark.parametrize("sig,earlier", [(signal.SIGINT, True), (signal.SIGTERM, False)])
def test_a_signal_halfway_through_fd_prep_leaves_the_previous_output_or_none(tmp_path, sig, earlier):
    """Ctrl-C or a kill while fd-prep writes: the output is the previous run's, whole, or absent
    (never half written), and the next run completes."""
    from fd.cli import prep_cmd
    from tests.conftest import ROOT

    fixtures.widerface_tree(tmp_path / "w", "train", [
        (f"e/{i}.jpg", ["1", f"{10 + i} 20 40 50 0 0 0 0 0 0"], True) for i in range(40)])
    out = tmp_path / "faces"
    args = ["--widerface", str(tmp_path / "w"), "--out", str(out), "--no-progress"]
    if earlier:
        first = CliRunner().invoke(prep_cmd, [*args, "--val-fraction", "0.5"])
        assert first.exit_code == 0, first.output
    before = _snapshot(out) if earlier else None

    proc = fixtures.signal_when_marked(SLOW_FD_PREP, args, tmp_path / "started", sig, {}, ROOT,
                                       start_timeout=120)
    err = proc.stderr
    assert proc.returncode in (130, -sig, 128 + sig), err  # stopped, not finished
    if earlier:
        assert _snapshot(out) == before  # the previous output, whole
    else:
        assert not out.exists()
    assert "Traceback" not in err

    again = CliRunner().invoke(prep_cmd, args)
    assert again.exit_code == 0, again.output
    report = json.loads((out / "prep_report.json").read_text())
    assert report["images"]["train"] + report["images"]["val"] == 40
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".faces")] == []  # no leftovers
