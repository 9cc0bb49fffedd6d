"""YOLO, Pascal VOC and COCO face-box readers on fixtures in each exact format, bad records included."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fd.convert.coco import read_coco
from fd.convert.voc import read_voc
from fd.convert.yolo import parse_line, read_yolo, yolo_face_classes
from fd.errors import FdError
from fer.readers.base import SkipLog
from tests import fixtures

# ---------------------------------------------------------------------------------------------- YOLO


def yolo_tree(root: Path) -> Path:
    """ultralytics layout: images/{train,val}/ mirrored by labels/{train,val}/, plus data.yaml."""
    (root).mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\n"
                                    "names: [person, face, Human_Face]\n")
    fixtures.jpeg(root / "images" / "train" / "a.jpg", 200, 100, seed=1)
    fixtures.write_image(root / "images" / "train" / "b.png", fixtures.face_like(2, 100, 3))
    fixtures.jpeg(root / "images" / "train" / "neg.jpg", 64, 64, seed=3)  # no label: background
    fixtures.jpeg(root / "images" / "val" / "c.jpg", 80, 60, seed=4)
    (root / "images" / "val" / "broken.jpg").write_bytes(b"not a jpeg")
    labels = root / "labels"
    (labels / "train").mkdir(parents=True)
    (labels / "val").mkdir(parents=True)
    (labels / "train" / "a.txt").write_text("\n".join([
        "1 0.5 0.5 0.2 0.4",  # 1: face -> (80, 30, 120, 70)
        "0 0.25 0.5 0.1 0.2",  # 2: person
        "2 0.1 0.1 0.2 0.2",  # 3: Human_Face at the corner -> (0, 0, 40, 20)
        "1 0.5 0.5 0.2",  # 4: four fields
        "1 a 0.5 0.2 0.2",  # 5: not a number
        "1.5 0.5 0.5 0.2 0.2",  # 6: class is not an integer
        "1 1.2 0.5 0.2 0.2",  # 7: centre outside the image
        "1 0.5 0.5 -0.1 0.2",  # 8: negative width
        "1 0.5 0.5 0 0.2",  # 9: zero width
        "",  # 10: blank, ignored
        "1 1.0005 0.5 0.1 0.1",  # 11: within the tolerance, clipped -> (190.1, 45, 200, 55)
        "1 nan 0.5 0.1 0.1",  # 12: NaN
        "1 0.5 0.5 0.1 0.1 0.9",  # 13: six fields (a prediction with a score, not a label)
        "-1 0.5 0.5 0.1 0.1",  # 14: negative class id
    ]) + "\n")
    (labels / "train" / "b.txt").write_text("1 0.5 0.5 0.5 0.5\n")
    (labels / "val" / "c.txt").write_text("")  # an empty label: a negative too
    (labels / "val" / "orphan.txt").write_text("1 0.5 0.5 0.5 0.5\n")  # no image: ignored
    return root


def test_yolo_records_boxes_and_skips(tmp_path):
    root = yolo_tree(tmp_path / "ds")
    classes = yolo_face_classes(root)
    assert classes == {1, 2}
    skips = SkipLog()
    records = {r.key: r for r in read_yolo(root, skips, classes)}
    assert set(records) == {"images/train/a.jpg", "images/train/b.png", "images/train/neg.jpg",
                            "images/val/c.jpg"}
    a = records["images/train/a.jpg"]
    assert a.source == "yolo" and a.size == (200, 100)
    assert a.boxes[:2] == [(80, 30, 120, 70), (0, 0, 40, 20)]
    assert a.boxes[2] == pytest.approx((190.1, 45, 200, 55))
    assert len(a.boxes) == 3
    assert records["images/train/b.png"].boxes == [(25, 25, 75, 75)]
    assert records["images/train/neg.jpg"].boxes == []
    assert records["images/val/c.jpg"].boxes == []
    assert skips.counts == {"not a face class": 1, "malformed line": 6, "coordinates out of range": 1,
                            "negative size": 1, "degenerate box": 1, "unreadable image": 1}
    assert skips.examples["malformed line"] == ["labels/train/a.txt:4", "labels/train/a.txt:5",
                                                "labels/train/a.txt:6", "labels/train/a.txt:12",
                                                "labels/train/a.txt:13"]  # 5 examples kept
    assert skips.examples["negative size"] == ["labels/train/a.txt:8"]


def test_yolo_all_classes_when_none_given(tmp_path):
    root = yolo_tree(tmp_path / "ds")
    skips = SkipLog()
    records = {r.key: r for r in read_yolo(root, skips)}
    assert records["images/train/a.jpg"].boxes[:3] == [(80, 30, 120, 70), (40, 40, 60, 60), (0, 0, 40, 20)]
    assert "not a face class" not in skips.counts


def test_yolo_side_by_side_and_roboflow_layouts(tmp_path):
    fixtures.jpeg(tmp_path / "flat" / "x.jpg", 100, 50)
    (tmp_path / "flat" / "x.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    fixtures.jpeg(tmp_path / "flat" / "sub" / "images" / "y.jpg", 100, 50)  # `images`, no labels/
    (tmp_path / "flat" / "sub" / "images" / "y.txt").write_text("0 0.1 0.2 0.2 0.4\n")
    records = {r.key: r.boxes for r in read_yolo(tmp_path / "flat", SkipLog())}
    assert records == {"x.jpg": [(25, 12.5, 75, 37.5)], "sub/images/y.jpg": [(0, 0, 20, 20)]}

    fixtures.jpeg(tmp_path / "rf" / "train" / "images" / "z.jpg", 100, 100)
    (tmp_path / "rf" / "train" / "labels").mkdir(parents=True)
    (tmp_path / "rf" / "train" / "labels" / "z.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (record,) = read_yolo(tmp_path / "rf", SkipLog())
    assert (record.key, record.boxes) == ("train/images/z.jpg", [(40, 40, 60, 60)])


def test_yolo_fatal_errors(tmp_path):
    with pytest.raises(FdError, match="YOLO folder .*nope not found: pass the folder"):
        list(read_yolo(tmp_path / "nope", SkipLog()))
    (tmp_path / "empty").mkdir()
    with pytest.raises(FdError, match="no images under .*empty"):
        list(read_yolo(tmp_path / "empty", SkipLog()))
    fixtures.jpeg(tmp_path / "unlabelled" / "images" / "a.jpg", 20, 20)
    with pytest.raises(FdError, match="no YOLO label file for any of the 1 images"):
        list(read_yolo(tmp_path / "unlabelled", SkipLog()))


def test_yolo_face_classes(tmp_path):
    assert yolo_face_classes(tmp_path) is None  # no names anywhere: the caller keeps every class
    (tmp_path / "classes.txt").write_text("person\nFACE\n\nface_mask\n")
    assert yolo_face_classes(tmp_path) == {1, 3}
    assert yolo_face_classes(tmp_path, ["person"]) == {0}
    (tmp_path / "data.yaml").write_text("names:\n  0: head\n  1: person\n")  # data.yaml wins
    with pytest.raises(FdError, match="no class name contains 'face'; classes are 0=head, 1=person"):
        yolo_face_classes(tmp_path)
    assert yolo_face_classes(tmp_path, {"head"}) == {0}
    with pytest.raises(FdError, match=r"none of \['Head'\] found"):
        yolo_face_classes(tmp_path, {"Head"})
    (tmp_path / "data.yaml").write_text("names: [face\n")
    with pytest.raises(FdError, match="data.yaml is not valid YAML"):
        yolo_face_classes(tmp_path)
    (tmp_path / "data.yaml").write_text("nc: 1\n")
    with pytest.raises(FdError, match="data.yaml has no names"):
        yolo_face_classes(tmp_path)


@pytest.fixture(scope="module")
def yolo_image(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("yolo_prop")
    fixtures.jpeg(root / "images" / "p.jpg", 640, 480)
    (root / "labels").mkdir()
    return root


@st.composite
def pixel_boxes(draw, width=640, height=480):
    x1 = draw(st.floats(0, width - 1.01))
    y1 = draw(st.floats(0, height - 1.01))
    x2 = draw(st.floats(x1 + 1.01, width))  # clip_box drops boxes under 1 px; 6-digit rounding moves
    y2 = draw(st.floats(y1 + 1.01, height))  # an edge by up to 3e-4 px, so stay clear of that limit
    return x1, y1, x2, y2


@given(pixel_boxes())
@settings(max_examples=150, deadline=None)
def test_yolo_line_round_trips(yolo_image, box):
    x1, y1, x2, y2 = box
    line = (f"0 {(x1 + x2) / 2 / 640:.6f} {(y1 + y2) / 2 / 480:.6f} "  # as ultralytics writes it
            f"{(x2 - x1) / 640:.6f} {(y2 - y1) / 480:.6f}")
    (yolo_image / "labels" / "p.txt").write_text(line + "\n")
    skips = SkipLog()
    (record,) = read_yolo(yolo_image, skips)
    assert not skips.counts
    (read,) = record.boxes
    assert read == pytest.approx(box, abs=1e-3)


@given(st.text(alphabet=st.sampled_from(list("0123456789 -.enaif")), max_size=40))
@settings(max_examples=300, deadline=None)
def test_yolo_line_parser_never_crashes(line):
    parsed = parse_line(line)
    if not isinstance(parsed, str):
        _, cx, cy, w, h = parsed
        assert all(-0.0011 < v < 1.0011 for v in (cx, cy, w, h)) and w >= 0 and h >= 0

# ----------------------------------------------------------------------------------------------- VOC


def voc_xml(filename: str | None, size: tuple[int, int] | None, objects: list[tuple[str, str]]) -> str:
    """One VOC annotation; each object is (name, the raw inside of its <bndbox>)."""
    head = f"<filename>{filename}</filename>" if filename is not None else ""
    if size:
        head += f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
    body = "".join(f"<object><name>{name}</name><pose>Unspecified</pose><difficult>0</difficult>"
                   f"{bndbox}</object>" for name, bndbox in objects)
    return f"<annotation><folder>images</folder>{head}<segmented>0</segmented>{body}</annotation>\n"


def bb(xmin, ymin, xmax, ymax, junk: str = "") -> str:
    return (f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax>"
            f"<ymax>{ymax}</ymax>{junk}</bndbox>")


def voc_tree(root: Path) -> Path:
    """annotations/*.xml with images/ beside it, bad files of every kind included."""
    ann, images = root / "annotations", root / "images"
    ann.mkdir(parents=True)
    fixtures.jpeg(images / "a.jpg", 200, 100, seed=1)
    fixtures.jpeg(images / "b.png", 120, 80, seed=2)
    fixtures.jpeg(images / "f.jpg", 50, 50, seed=3)
    junk = "file:/Users/someone/archive/annotations/maksssksksss17.xml"  # as in Face Mask Detection
    (ann / "a.xml").write_text(voc_xml("a.jpg", (200, 100), [
        ("face", bb(10, 20, 50, 60, junk) + junk),  # -> (9, 19, 50, 60)
        ("hand", bb(60, 10, 80, 30)),  # a face only when classes is None -> (59, 9, 80, 30)
        ("face", bb(150, 40, 260, 90)),  # past the right edge -> (149, 39, 200, 90)
        ("face", bb("x", 1, 5, 5)),  # non-numeric
        ("face", ""),  # no <bndbox>
        ("face", bb(30, 30, 30, 31)),  # one pixel wide -> (29, 29, 30, 31)
        ("face", bb(40, 40, 20, 50)),  # xmax < xmin
        ("face", bb(" 100.5 ", 10, "inf", 20)),  # infinite
    ]))
    (ann / "b.xml").write_text(voc_xml("b_renamed.jpg", (300, 300), [("face", bb(1, 1, 60, 40))]))
    (ann / "c.xml").write_text(voc_xml("c.jpg", (10, 10), [("face", bb(1, 1, 5, 5))]))  # no image
    (ann / "d.xml").write_text(voc_xml("a.jpg", (200, 100), [])[:40])  # truncated
    (ann / "e.xml").write_text("<foo><filename>a.jpg</filename></foo>")  # not an <annotation>
    (ann / "f.xml").write_text(voc_xml("f.jpg", None, []))  # no <size>, no objects: a negative
    (ann / "notes.txt").write_text("not an annotation")
    return root


def test_voc_records_boxes_and_skips(tmp_path):
    root = voc_tree(tmp_path)
    skips = SkipLog()
    records = {r.key: r for r in read_voc(root / "annotations", None, skips, classes={"face"})}
    assert set(records) == {"a.jpg", "b.png", "f.jpg"}
    assert records["a.jpg"].source == "voc" and records["a.jpg"].path == root / "images" / "a.jpg"
    assert records["a.jpg"].boxes == [(9, 19, 50, 60), (149, 39, 200, 90), (29, 29, 30, 31)]
    assert records["b.png"].boxes == [(0, 0, 60, 40)]  # found by the file's stem, wrong <filename>
    assert records["b.png"].size == (120, 80)  # the real size, not <size>'s 300x300
    assert records["f.jpg"].boxes == []
    assert skips.counts == {"not a face class": 1, "malformed box": 3, "degenerate box": 1,
                            "size differs from annotation": 1, "missing image on disk": 1,
                            "malformed XML": 2}
    assert skips.examples["malformed box"] == ["a.xml: object 4", "a.xml: object 5", "a.xml: object 8"]
    assert skips.examples["size differs from annotation"] == ["b.xml"]
    assert skips.examples["missing image on disk"] == ["c.jpg"]
    assert skips.examples["malformed XML"] == ["d.xml", "e.xml"]


def test_voc_every_object_is_a_face_by_default(tmp_path):
    root = voc_tree(tmp_path)
    skips = SkipLog()
    records = {r.key: r for r in read_voc(root / "annotations", None, skips)}
    assert records["a.jpg"].boxes[:2] == [(9, 19, 50, 60), (59, 9, 80, 30)]
    assert "not a face class" not in skips.counts


def test_voc_image_folders(tmp_path):
    # Pascal VOC's own layout: Annotations/ + JPEGImages/
    fixtures.jpeg(tmp_path / "voc" / "JPEGImages" / "2007_000027.jpg", 100, 100)
    (tmp_path / "voc" / "Annotations").mkdir(parents=True)
    (tmp_path / "voc" / "Annotations" / "2007_000027.xml").write_text(
        voc_xml("2007_000027.jpg", (100, 100), [("person", bb(1, 1, 100, 100))]))
    (record,) = read_voc(tmp_path / "voc" / "Annotations", None, SkipLog())
    assert record.boxes == [(0, 0, 100, 100)]
    # images beside the XML files, <filename> without a suffix
    fixtures.jpeg(tmp_path / "mixed" / "p.jpg", 40, 40)
    (tmp_path / "mixed" / "p.xml").write_text(voc_xml("p", (40, 40), [("face", bb(2, 2, 10, 10))]))
    (record,) = read_voc(tmp_path / "mixed", None, SkipLog())
    assert (record.key, record.boxes) == ("p.jpg", [(1, 1, 10, 10)])
    # an explicit image folder
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "p.xml").write_text(voc_xml("p.jpg", (40, 40), []))
    (record,) = read_voc(tmp_path / "ann", tmp_path / "mixed", SkipLog())
    assert record.path == tmp_path / "mixed" / "p.jpg"


def test_voc_fatal_errors(tmp_path):
    with pytest.raises(FdError, match="VOC annotation folder .*nope not found: pass the folder of .xml"):
        list(read_voc(tmp_path / "nope", None, SkipLog()))
    (tmp_path / "ann").mkdir()
    with pytest.raises(FdError, match="no .xml files in .*ann"):
        list(read_voc(tmp_path / "ann", None, SkipLog()))
    (tmp_path / "ann" / "a.xml").write_text(voc_xml("a.jpg", None, []))
    with pytest.raises(FdError, match="VOC image folder .*pics not found"):
        list(read_voc(tmp_path / "ann", tmp_path / "pics", SkipLog()))


def test_voc_face_mask_detection_real_data():
    """Face Mask Detection (Kaggle andrewmvd/face-mask-detection): 853 PNGs, 4,072 faces."""
    root = os.environ.get("FD_MASK_DATA")
    if not root or not (Path(root) / "annotations").is_dir():
        pytest.skip("set FD_MASK_DATA to the Face Mask Detection folder (annotations/, images/)")
    skips = SkipLog()
    records = list(read_voc(Path(root) / "annotations", None, skips))
    assert len(records) == 853
    assert sum(len(r.boxes) for r in records) == 4072
    assert not skips.counts
    first = next(r for r in records if r.key == "maksssksksss0.png")  # has the file:/Users/... tail
    assert first.size == (512, 366)
    assert first.boxes == [(78, 104, 109, 142), (184, 99, 226, 144), (324, 89, 360, 141)]

# ---------------------------------------------------------------------------------------------- COCO


def coco_tree(root: Path) -> Path:
    """annotations/instances.json with images/ beside it: good, bad and crowd annotations."""
    fixtures.jpeg(root / "images" / "a.jpg", 200, 100, seed=1)
    fixtures.jpeg(root / "images" / "b.jpg", 100, 100, seed=2)
    fixtures.jpeg(root / "images" / "neg.jpg", 50, 50, seed=3)
    data = {
        "info": {"description": "fixture"},
        "categories": [{"id": 1, "name": "face"}, {"id": 2, "name": "person"},
                       {"id": 3, "name": "Face_Mask"}],
        "images": [
            {"id": 1, "file_name": "a.jpg", "width": 200, "height": 100},
            {"id": 2, "file_name": "b.jpg", "width": 90, "height": 100},  # wrong width
            {"id": 3, "file_name": "neg.jpg", "width": 50, "height": 50},
            {"id": 4, "file_name": "gone.jpg", "width": 50, "height": 50},
            {"id": 5, "width": 50, "height": 50},  # no file_name
            {"id": 1, "file_name": "b.jpg"},  # the id again
            "a.jpg",
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 30, 40], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [180.5, 50, 40, 40], "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 10], "iscrowd": 0},
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "iscrowd": 1},
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": "10,20,30,40"},
            {"id": 6, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3]},
            {"id": 7, "image_id": 1, "category_id": 1, "bbox": [5, 5, 0, 10]},
            {"id": 8, "image_id": 99, "category_id": 1, "bbox": [5, 5, 10, 10]},
            {"id": 9, "image_id": [1], "category_id": 1, "bbox": [5, 5, 10, 10]},
            "junk",
            {"id": 11, "image_id": 2, "category_id": 1, "bbox": [0, 0, 50, 50], "area": 2500},
            {"id": 12, "image_id": 4, "category_id": 1, "bbox": [0, 0, 5, 5]},
        ],
    }
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances.json").write_text(json.dumps(data))
    return root


def test_coco_records_boxes_and_skips(tmp_path):
    root = coco_tree(tmp_path)
    skips = SkipLog()
    records = {r.key: r for r in read_coco(root / "annotations" / "instances.json", root / "images", skips)}
    assert list(records) == ["a.jpg", "b.jpg", "neg.jpg"]
    assert records["a.jpg"].source == "coco"
    assert records["a.jpg"].boxes == [(10, 20, 40, 60), (180.5, 50, 200, 90)]  # the 2nd clipped
    assert records["b.jpg"].boxes == [(0, 0, 50, 50)]
    assert records["neg.jpg"].boxes == []
    assert skips.counts == {"malformed image entry": 2, "duplicate image id": 1, "not a face class": 1,
                            "crowd box": 1, "malformed box": 2, "degenerate box": 1,
                            "unknown image id": 1, "malformed annotation": 2,
                            "missing image on disk": 1, "size differs from annotation": 1}
    assert skips.examples["crowd box"] == ["instances.json: annotations[3]"]
    assert skips.examples["malformed image entry"] == ["instances.json: images[4]",
                                                       "instances.json: images[6]"]
    assert skips.examples["size differs from annotation"] == ["b.jpg"]


def test_coco_named_categories_and_image_folders(tmp_path):
    root = coco_tree(tmp_path)
    skips = SkipLog()
    records = {r.key: r for r in read_coco(root / "annotations" / "instances.json", root / "images",
                                           skips, category_names={"person"})}
    assert records["a.jpg"].boxes == [(0, 0, 10, 10)]
    assert skips.counts["not a face class"] == 9
    # the default image folder is images/ beside the JSON, else the JSON's own folder (Roboflow)
    (root / "images" / "_annotations.coco.json").write_text(
        (root / "annotations" / "instances.json").read_text())
    assert len(list(read_coco(root / "images" / "_annotations.coco.json", None, SkipLog()))) == 3
    (root / "annotations" / "images").mkdir()
    assert list(read_coco(root / "annotations" / "instances.json", None, SkipLog())) == []


def test_coco_fatal_errors(tmp_path):
    path = tmp_path / "instances.json"
    with pytest.raises(FdError, match="instances.json not found: pass the detection JSON"):
        list(read_coco(path, None, SkipLog()))
    path.write_text("{'images': []}")
    with pytest.raises(FdError, match="instances.json is not JSON .*line 1.*: pass a COCO"):
        list(read_coco(path, None, SkipLog()))
    path.write_text("[]")
    with pytest.raises(FdError, match="has no images or annotations list"):
        list(read_coco(path, None, SkipLog()))
    path.write_text(json.dumps({"images": [], "annotations": {}}))
    with pytest.raises(FdError, match="has no annotations list"):
        list(read_coco(path, None, SkipLog()))
    path.write_text(json.dumps({"images": [], "annotations": [],
                                "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "car"}]}))
    with pytest.raises(FdError, match="no category name contains 'face'; categories are 1=person, 2=car"):
        list(read_coco(path, None, SkipLog()))
    with pytest.raises(FdError, match=r"none of \['head'\] found; categories are 1=person"):
        list(read_coco(path, None, SkipLog(), category_names={"head"}))
    path.write_text(json.dumps({"images": [], "annotations": []}))
    with pytest.raises(FdError, match="categories are none"):
        list(read_coco(path, None, SkipLog()))
    path.write_text(json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "face"}]}))
    with pytest.raises(FdError, match="COCO image folder .*pics not found"):
        list(read_coco(path, tmp_path / "pics", SkipLog()))
