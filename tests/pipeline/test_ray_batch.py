"""fer-detect on Ray (issue 11): a local Ray instance with two CPUs, started here, gives the plain
run's records for the same inputs, through the Python function and through --ray."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.config import PipelineConfig
from tests import fixtures

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def photos(tmp_path):
    folder = fixtures.photo_folder(tmp_path / "photos", 6)
    (folder / "part1" / "broken.jpg").write_bytes(b"not a jpeg")
    return folder


def run(args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_ray_writes_the_plain_runs_records(local_ray, photos, fer_model, tmp_path):
    from pipeline.ray_batch import analyze_with_ray

    plain = run([photos, "--detector", "haar", "--fer-model", fer_model, "--json",
                 tmp_path / "plain.jsonl"])
    assert plain.exit_code == 3, plain.output
    expected = (tmp_path / "plain.jsonl").read_text()
    assert expected.count("\n") == 6

    cfg = PipelineConfig(detector="haar", fer_model=str(fer_model))
    assert analyze_with_ray([str(photos)], tmp_path / "ray.jsonl", cfg, num_actors=2) == (6, 1)
    assert (tmp_path / "ray.jsonl").read_text() == expected


def test_fer_detect_ray_option(local_ray, photos, fer_model, tmp_path):
    plain = run([photos, "--detector", "haar", "--fer-model", fer_model, "--json", "-"])
    on_ray = run([photos, "--detector", "haar", "--fer-model", fer_model, "--json", "-",
                  "--ray", "local"])
    assert on_ray.exit_code == plain.exit_code == 3, on_ray.output
    assert on_ray.stdout == plain.stdout
    assert "broken.jpg: not a readable image" in on_ray.stderr
