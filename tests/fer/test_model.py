import numpy as np

from fer.config import ModelConfig
from fer.model import build_model


def test_default_model_is_small_and_outputs_probabilities():
    model = build_model(ModelConfig(), 7)
    assert model.count_params() < 5_000_000
    probs = np.asarray(model(np.random.default_rng(0).random((3, 48, 48, 1)) * 255))
    assert probs.shape == (3, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_attention_variant_and_other_input_sizes():
    cfg = ModelConfig(input_size=64, channels=3, widths=(16, 32, 64), attention_heads=4)
    model = build_model(cfg, 8)
    assert any(layer.name == "mhsa" for layer in model.layers)
    assert model.input_shape == (None, 64, 64, 3)
    assert np.asarray(model(np.zeros((2, 64, 64, 3)))).shape == (2, 8)
