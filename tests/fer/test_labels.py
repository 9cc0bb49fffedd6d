import pytest

from fer.errors import FerError
from fer.labels import (
    AFFECTNET_CODES,
    FER2013_CODES,
    LABELS,
    canonical,
    label_set,
    resolve_folder_name,
)


def test_label_order_is_fer2013_order():
    assert LABELS == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    assert [FER2013_CODES[i] for i in range(7)] == list(LABELS)


def test_affectnet_codes_map_to_shared_names():
    assert AFFECTNET_CODES[0] == "neutral" and AFFECTNET_CODES[1] == "happy"
    assert AFFECTNET_CODES[6] == "angry" and AFFECTNET_CODES[7] == "contempt"
    assert set(AFFECTNET_CODES.values()) - {"contempt"} == set(LABELS)


@pytest.mark.parametrize("name,expected", [("anger", "angry"), ("Happiness", "happy"),
                                           ("SADNESS", "sad"), (" surprised ", "surprise"),
                                           ("contempt", "contempt"), ("bored", None)])
def test_aliases(name, expected):
    assert canonical(name) == expected


def test_contempt_is_an_eighth_class_only_on_request():
    assert label_set() == LABELS
    assert label_set(True) == (*LABELS, "contempt")


def test_numeric_folders_need_a_preset():
    with pytest.raises(FerError, match="numeric"):
        resolve_folder_name("3", None)
    assert resolve_folder_name("3", FER2013_CODES) == "happy"
    assert resolve_folder_name("3", AFFECTNET_CODES) == "surprise"


def test_unknown_folder_is_named_in_the_error():
    with pytest.raises(FerError, match="'bored'"):
        resolve_folder_name("bored", FER2013_CODES)
