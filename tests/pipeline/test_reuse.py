"""A face carried between detections whose crop did not change keeps its probabilities instead of
being classified again; one that changed, or any face with the tolerance at 0, is classified."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.config import PipelineConfig, check_config
from pipeline.errors import ConfigError
from pipeline.reuse import CropMemory
from pipeline.sources import Frame
from pipeline.tracker import IouTracker
from tests import fixtures, models


def still_frames(count: int, noise: float = 2.0, changed: int | None = None) -> list[Frame]:
    """One real face standing still in a 640x480 frame, with fresh sensor noise on every frame;
    from frame `changed` on, the lower half of the face is overwritten (a different mouth)."""
    patch = fixtures.face_patch()
    rng = np.random.default_rng(0)
    frames = []
    for i in range(count):
        image = np.full((480, 640, 3), 90, np.uint8)
        image[100:100 + patch.shape[0], 200:200 + patch.shape[1]] = patch
        if changed is not None and i >= changed:
            image[190:240, 230:300] = 255 - image[190:240, 230:300]
        noisy = image + rng.normal(0, noise, image.shape)
        frames.append(Frame(np.clip(noisy, 0, 255).astype(np.uint8), "still", i, i / 30))
    return frames


@pytest.fixture()
def pipe():
    """The shipped pipeline; `pipe.read` counts the faces its classifier is given."""
    pipe = models.shipped_pipeline()
    pipe.read, predict = 0, pipe.classifier.predict

    def counted(batch, tta_flip=None):
        pipe.read += len(batch)
        return predict(batch, tta_flip=tta_flip)

    pipe.classifier.predict = counted
    return pipe


def test_a_still_face_is_classified_on_detection_frames_only(pipe):
    results = [r for _, r in pipe.analyze_stream(still_frames(9), IouTracker(), detect_every=3)]
    assert all(len(r.faces) == 1 and r.faces[0].probabilities for r in results)
    assert pipe.read == 3  # frames 0, 3, 6: the six carried frames reused them
    ids = {r.faces[0].id for r in results}
    assert len(ids) == 1


def test_tolerance_zero_classifies_every_frame(pipe):
    pipe.reuse_tolerance = 0.0
    list(pipe.analyze_stream(still_frames(9), IouTracker(), detect_every=3))
    assert pipe.read == 9


def test_a_face_whose_crop_changed_is_classified_again(pipe):
    frames = still_frames(9, changed=4)  # changes on a carried frame (4), between detections
    results = [r for _, r in pipe.analyze_stream(frames, IouTracker(), detect_every=3)]
    # 0, 3, 6 detected; 1, 2 reuse 0; 4 differs from 3 and is read; 5 reuses 4; 7, 8 reuse 6
    assert pipe.read == 4
    assert results[4].faces[0].probabilities != results[2].faces[0].probabilities


def test_memory_compares_with_the_last_input_classified_so_drift_adds_up():
    memory = CropMemory(tolerance=1.0)
    base = np.full((48, 48, 1), 100, np.uint8)
    probs = np.array([0.2, 0.8])
    assert memory.recall(7, base) is None  # never seen
    memory.keep(7, base, probs)
    assert memory.recall(7, base + 0) is probs
    slightly = base.copy()
    slightly[:24] += 1  # mean difference 0.5
    assert memory.recall(7, slightly) is probs
    drifted = base + 1  # 1.0 from the kept input, though only 0.5 from the last frame
    assert memory.recall(7, drifted) is None
    assert memory.recall(8, base) is None  # another face
    memory.forget_all_but({8})
    assert memory.recall(7, base) is None


@pytest.mark.parametrize("value", [-1, 256, "high"])
def test_reuse_tolerance_is_checked(value):
    with pytest.raises(ConfigError, match="reuse_tolerance"):
        check_config(PipelineConfig(reuse_tolerance=value))
