"""Each face converter on fixtures in its dataset's exact format, quirks and bad records included."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fd.convert.combined import read_combined
from fd.convert.fddb import ellipse_box, parse_ellipse_list, read_fddb, scale_box
from fd.convert.lfpw import landmark_box, parse_pts, read_lfpw
from fd.convert.widerface import parse_annotations, read_widerface
from fd.errors import FdError
from fer.readers.base import SkipLog
from tests import fixtures

ROW = "{} {} {} {} 0 0 0 {} 0 0"


def wider(x, y, w, h, invalid=0):
    return ROW.format(x, y, w, h, invalid)


def test_widerface_records_quirks_and_skips(tmp_path):
    fixtures.widerface_tree(tmp_path, "train", [
        ("0--Parade/a.jpg", ["2", wider(10, 10, 30, 40), wider(50, 20, 20, 20, invalid=1)], True),
        ("0--Parade/empty.jpg", ["0", "0 0 0 0 0 0 0 0 0 0"], True),  # train's no-face quirk
        ("0--Parade/gone.jpg", ["1", wider(1, 1, 5, 5)], False),
        ("0--Parade/edge.jpg", ["3", wider(180, 140, 50, 50), wider(5, 5, 0, 10),
                                wider(300, 300, 10, 10)], True),
    ])
    skips = SkipLog()
    records = {r.key: r for r in read_widerface(tmp_path, "train", skips)}
    assert set(records) == {"0--Parade/a.jpg", "0--Parade/empty.jpg", "0--Parade/edge.jpg"}
    assert records["0--Parade/a.jpg"].boxes == [(10, 10, 40, 50)]
    assert records["0--Parade/empty.jpg"].boxes == []
    assert records["0--Parade/edge.jpg"].boxes == [(180, 140, 200, 150)]  # clipped to 200x150
    assert skips.counts == {"invalid flag": 1, "missing image on disk": 1, "degenerate box": 2}


def test_widerface_val_quirk_and_min_size(tmp_path):
    fixtures.widerface_tree(tmp_path, "val", [
        ("1--Handshaking/none.jpg", ["1", "0 0 0 0 0 0 0 0 0 0"], True),  # val's no-face quirk
        ("1--Handshaking/tiny.jpg", ["2", wider(10, 10, 4, 5), wider(50, 50, 40, 40)], True),
    ])
    skips = SkipLog()
    records = {r.key: r for r in read_widerface(tmp_path, "val", skips, min_size=10)}
    assert records["1--Handshaking/none.jpg"].boxes == []
    assert records["1--Handshaking/tiny.jpg"].boxes == [(50, 50, 90, 90)]
    assert skips.counts == {"below minimum size": 1}


def test_widerface_bad_records_are_counted_not_fatal(tmp_path):
    fixtures.widerface_tree(tmp_path, "train", [
        ("e/a.jpg", ["3", wider(10, 10, 20, 20), wider(40, 40, 20, 20)], True),  # count too big
        ("e/b.jpg", ["two", wider(1, 1, 9, 9)], True),  # non-numeric count
        ("e/c.jpg", ["2", "10 10 x 20 0 0 0 0 0 0", "5 5"], True),  # non-numeric, truncated
        ("e/d.jpg", ["1", wider(10, 10, 20, 20)], True),  # a good record after the bad ones
    ])
    skips = SkipLog()
    records = {r.key: r for r in read_widerface(tmp_path, "train", skips)}
    assert records["e/a.jpg"].boxes == [(10, 10, 30, 30), (40, 40, 60, 60)]
    assert records["e/d.jpg"].boxes == [(10, 10, 30, 30)]
    assert "e/b.jpg" not in records
    assert skips.counts["count mismatch"] == 1
    assert skips.counts["malformed count"] == 1
    assert skips.counts["malformed line"] == 2  # the non-numeric and the truncated row


def test_widerface_missing_annotations_is_fatal(tmp_path):
    with pytest.raises(FdError, match="wider_face_train_bbx_gt.txt not found"):
        list(read_widerface(tmp_path, "train", SkipLog()))


@given(st.text(alphabet=st.sampled_from(list("0123456789 -.\nabc/jpg")), max_size=400))
@settings(max_examples=300, deadline=None)
def test_widerface_parser_never_crashes(text):
    skips = SkipLog()
    for name, rows in parse_annotations(text, skips):
        assert name.lower().endswith((".jpg", ".jpeg", ".png"))
        assert all(len(r) >= 4 for r in rows)


def sampled_extent(a, b, t, cx, cy):
    s = np.linspace(0, 2 * np.pi, 200001)
    x = cx + a * np.cos(s) * np.cos(t) - b * np.sin(s) * np.sin(t)
    y = cy + a * np.cos(s) * np.sin(t) + b * np.sin(s) * np.cos(t)
    return x.min(), y.min(), x.max(), y.max()


@pytest.mark.parametrize("a,b,t", [(123.5833, 85.5495, 1.265839), (67.36, 44.51, -1.476417),
                                   (50, 50, 0.3), (80, 20, 0.0), (80, 20, math.pi / 2)])
def test_ellipse_box_matches_sampled_points(a, b, t):
    box = ellipse_box(a, b, t, 269.69, 161.78)
    np.testing.assert_allclose(box, sampled_extent(a, b, t, 269.69, 161.78), atol=1e-4)


@given(st.floats(1, 500), st.floats(1, 500), st.floats(-4, 4), st.floats(-100, 900),
       st.floats(-100, 900))
@settings(max_examples=200, deadline=None)
def test_ellipse_box_property(a, b, t, cx, cy):
    x1, y1, x2, y2 = ellipse_box(a, b, t, cx, cy)
    sx = sampled_extent(a, b, t, cx, cy)
    tol = 1e-6 * max(a, b) + 1e-6
    assert x1 <= sx[0] + tol and y1 <= sx[1] + tol and x2 >= sx[2] - tol and y2 >= sx[3] - tol
    assert abs(x1 - sx[0]) < 1e-3 * max(a, b) + 1e-6 and abs(y2 - sx[3]) < 1e-3 * max(a, b) + 1e-6


def test_scale_box_keeps_the_centre():
    assert scale_box((0, 0, 10, 20), 1.0, 0.5) == (0, 5, 10, 15)


def test_fddb_folds_and_skips(tmp_path):
    fixtures.fddb_tree(tmp_path, {
        1: [("2002/08/11/big/img_1", ["40 30 1.5707963 150 120 1", "20 10 0 290 240 1"]),
            ("2002/08/11/big/img_absent", ["40 30 0 100 100 1"])],
        2: [("2003/01/01/big/img_2", ["0 30 0 100 100 1", "abc", "30 20 0.2 100 100 1"])],
    })
    skips = SkipLog()
    records = {r.key: r for r in read_fddb(tmp_path, skips)}
    assert set(records) == {"2002/08/11/big/img_1", "2003/01/01/big/img_2"}
    first = records["2002/08/11/big/img_1"].boxes
    np.testing.assert_allclose(first[0], (120, 80, 180, 160), atol=1e-4)  # vertical major axis
    np.testing.assert_allclose(first[1], (270, 230, 300, 250))  # clipped to 300x250
    assert len(records["2003/01/01/big/img_2"].boxes) == 1
    assert skips.counts == {"missing image on disk": 1, "degenerate box": 1, "malformed line": 1}


def test_fddb_count_that_disagrees_with_the_rows():
    text = "2002/a/img_1\n3\n40 30 0 100 100 1\n2002/a/img_2\n1\n40 30 0 100 100 1\n"
    skips = SkipLog()
    parsed = list(parse_ellipse_list(text, skips, "f"))
    assert [(name, len(rows)) for name, rows in parsed] == [("2002/a/img_1", 1), ("2002/a/img_2", 1)]
    assert skips.counts == {"count mismatch": 1}


def test_fddb_scale_option(tmp_path):
    fixtures.fddb_tree(tmp_path, {1: [("2002/a/big/img_1", ["40 30 1.5707963 150 120 1"])]})
    (record,) = read_fddb(tmp_path, SkipLog(), scale=(1.0, 0.5))
    np.testing.assert_allclose(record.boxes[0], (120, 100, 180, 140), atol=1e-4)


def test_fddb_without_folds_is_fatal(tmp_path):
    with pytest.raises(FdError, match="FDDB-fold-NN-ellipseList"):
        list(read_fddb(tmp_path, SkipLog()))


@given(st.text(alphabet=st.sampled_from(list("0123456789 -.\n/abimg")), max_size=400))
@settings(max_examples=300, deadline=None)
def test_fddb_parser_never_crashes(text):
    for name, rows in parse_ellipse_list(text, SkipLog(), "f"):
        assert "/" in name and all(len(r) >= 5 for r in rows)


def test_lfpw_boxes_from_landmarks_with_forehead_margin(tmp_path):
    fixtures.lfpw_tree(tmp_path, count=2)
    skips = SkipLog()
    records = list(read_lfpw(tmp_path, skips))
    assert len(records) == 4 and not skips.counts
    # extent x 60-140 (w 80), y 80-170 (h 90): 5% sides, 30% top, 5% bottom
    np.testing.assert_allclose(records[0].boxes[0], (56, 53, 144, 174.5))


def test_lfpw_bad_files(tmp_path):
    fixtures.lfpw_tree(tmp_path, count=3)
    train = tmp_path / "lfpw" / "trainset"
    (train / "image_0000.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")  # 1 of 68
    (train / "image_0001.png").unlink()
    (train / "image_0002.pts").write_text("garbage")
    skips = SkipLog()
    assert len(list(read_lfpw(tmp_path, skips))) == 3
    assert skips.counts == {"malformed landmarks": 2, "missing image on disk": 1}


def test_pts_parser():
    points = [(float(i), float(2 * i)) for i in range(68)]
    assert parse_pts(fixtures.pts_text(points)) == points
    with pytest.raises(ValueError):
        parse_pts("version: 1\nn_points: 2\n{\n1 2 3\n}\n")
    assert landmark_box([(0, 0), (10, 20)], (0, 0, 0)) == (0, 0, 10, 20)


def test_combined_export(tmp_path):
    fixtures.jpeg(tmp_path / "imgs" / "a.jpg", 100, 80)
    fixtures.jpeg(tmp_path / "imgs" / "b.jpg", 100, 80)
    label = tmp_path / "label.txt"
    label.write_text("# imgs/a.jpg\n10 10 50 60\n60 10 120 70\nbad line\n# imgs/missing.jpg\n"
                     "1 1 5 5\n# imgs/b.jpg\n30 30 20 20\n")
    skips = SkipLog()
    records = {r.key: r for r in read_combined(label, skips)}
    assert records["imgs/a.jpg"].boxes == [(10, 10, 50, 60), (60, 10, 100, 70)]
    assert records["imgs/b.jpg"].boxes == []
    assert skips.counts == {"malformed line": 1, "missing image on disk": 1, "degenerate box": 1}
