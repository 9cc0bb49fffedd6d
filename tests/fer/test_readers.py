"""Every reader on fixtures written in the dataset's real format, bad records included."""

from collections import Counter

import pytest

from fer.errors import FerError
from fer.labels import LABELS
from fer.readers import read_dataset
from tests import fixtures


def test_fer2013_csv_splits_by_usage(tmp_path):
    path = fixtures.fer2013_csv(tmp_path / "fer2013.csv", per_class=2)
    train = read_dataset(path, "train")
    val = read_dataset(path, "val")
    test = read_dataset(f"{path}#PrivateTest")
    assert train.format == "fer2013-csv"
    assert len(train.samples) == len(val.samples) == len(test.samples) == 14
    assert Counter(s.label for s in train.samples) == {name: 2 for name in LABELS}
    assert train.samples[0].pixels.shape == (48, 48)
    assert len(read_dataset(f"{path}#all").samples) == 42


def test_fer2013_csv_counts_each_malformed_row(tmp_path):
    path = fixtures.fer2013_csv(tmp_path / "fer2013.csv", per_class=1, usages=("Training",),
                                bad_rows=True)
    ds = read_dataset(path, "train")
    assert len(ds.samples) == 7
    assert ds.skips.counts == {"malformed row": 4, "unknown label code": 1}
    assert all(":" in ex for ex in ds.skips.examples["malformed row"])


def test_fer2013_csv_with_spaces_in_header(tmp_path):
    """icml_face_data.csv spells its header 'emotion, Usage, pixels'."""
    src = fixtures.fer2013_csv(tmp_path / "a.csv", per_class=1, usages=("Training",))
    lines = src.read_text().splitlines()
    rows = [line.split(",") for line in lines[1:]]
    out = tmp_path / "icml_face_data.csv"
    out.write_text("emotion, Usage, pixels\n" + "\n".join(f"{r[0]},{r[2]},{r[1]}" for r in rows))
    assert len(read_dataset(out, "train").samples) == 7


def test_csv_with_wrong_header_is_fatal_and_named(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(FerError, match="other.csv: unrecognised CSV header"):
        read_dataset(path)


def test_affectnet_official_keeps_seven_classes_and_counts_the_rest(tmp_path):
    root = fixtures.affectnet_official(tmp_path / "AffectNet", per_code=2)
    ds = read_dataset(root, "train")
    assert ds.format == "affectnet"
    assert Counter(s.label for s in ds.samples) == {name: 2 for name in LABELS}
    assert ds.skips.counts == {"contempt excluded": 2, "not an expression (none)": 2,
                               "not an expression (uncertain)": 2,
                               "not an expression (no-face)": 2}
    sample = ds.samples[0]
    assert sample.box == (20, 25, 70, 70)
    assert sample.path.is_file() and "Manually_Annotated_Images" in str(sample.path)


def test_affectnet_contempt_on_request(tmp_path):
    root = fixtures.affectnet_official(tmp_path / "AffectNet", per_code=1)
    ds = read_dataset(root, "train", include_contempt=True)
    assert "contempt" in {s.label for s in ds.samples}
    assert "contempt excluded" not in ds.skips.counts


@pytest.mark.parametrize("header_on_val", [False, True])
def test_affectnet_validation_with_or_without_header(tmp_path, header_on_val):
    root = fixtures.affectnet_official(tmp_path / "AffectNet", per_code=1,
                                       header_on_val=header_on_val)
    assert len(read_dataset(root, "val").samples) == 7


def test_affectnet_bad_rows_are_skipped_and_counted(tmp_path):
    root = fixtures.affectnet_official(tmp_path / "AffectNet", per_code=1, bad_rows=True)
    ds = read_dataset(root / "Manually_Annotated_file_lists" / "training.csv")
    assert ds.format == "affectnet-csv"
    assert ds.skips.counts["malformed row"] == 2
    assert ds.skips.counts["degenerate box"] == 1
    # the missing image is found when decoding, see test_prepare
    assert any(s.key == "1/missing.jpg" for s in ds.samples)


def test_affectnet_wrong_header_is_fatal(tmp_path):
    lists = tmp_path / "AffectNet" / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True)
    (lists / "training.csv").write_text("subDirectory_filePath,x,y\n")
    with pytest.raises(FerError, match="training.csv: header"):
        read_dataset(tmp_path / "AffectNet")


def test_affectnet_missing_split_file(tmp_path):
    (tmp_path / "AffectNet" / "Manually_Annotated_file_lists").mkdir(parents=True)
    with pytest.raises(FerError, match="validation.csv not found"):
        read_dataset(tmp_path / "AffectNet", "val")


def test_class_folders_with_aliases_and_split_dirs(tmp_path):
    names = ["anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"]
    fixtures.class_folders(tmp_path / "data" / "train", names, per_class=2, ext=".jpg")
    fixtures.class_folders(tmp_path / "data" / "test", names, per_class=1)
    train = read_dataset(tmp_path / "data", "train")
    val = read_dataset(tmp_path / "data", "val")
    assert train.format == "folders"
    assert Counter(s.label for s in train.samples) == {name: 2 for name in LABELS}
    assert len(val.samples) == 7
    assert len(read_dataset(f"{tmp_path / 'data'}#test").samples) == 7


def test_numeric_class_folders(tmp_path):
    fixtures.class_folders(tmp_path / "d", [str(i) for i in range(7)], per_class=1)
    with pytest.raises(FerError, match="numeric"):
        read_dataset(tmp_path / "d")
    fer = read_dataset(tmp_path / "d", numeric="fer2013")
    aff = read_dataset(tmp_path / "d", numeric="affectnet")
    by_key = {s.key: s.label for s in fer.samples}
    assert by_key["0/img_0000.png"] == "angry"
    assert {s.key: s.label for s in aff.samples}["0/img_0000.png"] == "neutral"


def test_unknown_class_folder_is_fatal(tmp_path):
    fixtures.class_folders(tmp_path / "d", ["happy", "bored"], per_class=1)
    with pytest.raises(FerError, match="class folder 'bored'"):
        read_dataset(tmp_path / "d")


def test_missing_split_folder_is_explained(tmp_path):
    fixtures.class_folders(tmp_path / "d" / "train", ["happy"], per_class=1)
    with pytest.raises(FerError, match="none for 'val'"):
        read_dataset(tmp_path / "d", "val")


def test_affectnet_export_labels_csv(tmp_path):
    root = fixtures.affectnet_export(tmp_path / "export", per_class=2)
    ds = read_dataset(root)
    assert ds.format == "affectnet-export"
    assert Counter(s.label for s in ds.samples) == {name: 2 for name in LABELS}
    assert ds.skips.counts == {"contempt excluded": 2}
    with_contempt = read_dataset(root, include_contempt=True)
    assert len(with_contempt.samples) == 16


def test_affectnet_export_without_relfcs_and_bad_rows(tmp_path):
    root = fixtures.affectnet_export(tmp_path / "export", per_class=1, with_relfcs=False)
    with open(root / "labels.csv", "a") as f:
        f.write("happy/x.png,bored\n,happy\nonly-one-field\n")
    ds = read_dataset(root)
    assert len(ds.samples) == 7
    assert ds.skips.counts["unknown label"] == 1
    assert ds.skips.counts["malformed row"] == 2


def test_labels_csv_wrong_header(tmp_path):
    root = fixtures.affectnet_export(tmp_path / "export", per_class=1)
    (root / "labels.csv").write_text("path,emotion\nanger/a.png,anger\n")
    with pytest.raises(FerError, match="lacks the columns 'pth,label'"):
        read_dataset(root)


def test_missing_dataset_path(tmp_path):
    with pytest.raises(FerError, match="does not exist"):
        read_dataset(tmp_path / "nope")


def test_not_a_csv_file(tmp_path):
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(FerError, match="not a CSV"):
        read_dataset(tmp_path / "x.txt")
