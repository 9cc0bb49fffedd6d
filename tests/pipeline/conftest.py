from pathlib import Path

import pytest

from tests import models


@pytest.fixture(scope="session")
def fer_model(tmp_path_factory) -> Path:
    return models.tiny_fer_model(tmp_path_factory.mktemp("fer_model"))


@pytest.fixture(scope="session")
def yolo_models(tmp_path_factory) -> tuple[Path, Path]:
    return models.tiny_yolo(tmp_path_factory.mktemp("yolo"))
