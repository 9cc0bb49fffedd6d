"""FERNet-style CNN (Bodapati et al. 2022): stacked conv/batch-norm blocks with pooling and dropout,
optionally followed by multi-head self-attention over the last feature map."""

from __future__ import annotations

from fer.config import ModelConfig
from fer.keras_env import keras


def build_model(cfg: ModelConfig, num_classes: int, name: str | None = None):
    """Inputs are raw 0-255 pixels; scaling is inside the model so every back end feeds the same."""
    k = keras()
    layers = k.layers
    inputs = k.Input((cfg.input_size, cfg.input_size, cfg.channels), name="image")
    x = layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    for b, width in enumerate(cfg.widths):
        for c in range(cfg.convs_per_block):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"b{b}_conv{c}")(x)
            x = layers.BatchNormalization(name=f"b{b}_bn{c}")(x)
            x = layers.Activation("relu", name=f"b{b}_relu{c}")(x)
        # The attention variant keeps the last map unpooled so it attends over more positions.
        if not (cfg.attention_heads and b == len(cfg.widths) - 1):
            x = layers.MaxPooling2D(2, name=f"b{b}_pool")(x)
        x = layers.Dropout(cfg.block_dropout, name=f"b{b}_drop")(x)
    if cfg.attention_heads:
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        tokens = layers.Reshape((h * w, c), name="tokens")(x)
        attended = layers.MultiHeadAttention(cfg.attention_heads, key_dim=c // cfg.attention_heads,
                                             dropout=0.1, name="mhsa")(tokens, tokens)
        tokens = layers.LayerNormalization(name="mhsa_norm")(layers.Add(name="mhsa_add")(
            [tokens, attended]))
        x = layers.GlobalAveragePooling1D(name="pool")(tokens)
    else:
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(cfg.dense_units, use_bias=False, name="fc")(x)
    x = layers.BatchNormalization(name="fc_bn")(x)
    x = layers.Activation("relu", name="fc_relu")(x)
    x = layers.Dropout(cfg.dense_dropout, name="fc_drop")(x)
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32", name="probs")(x)
    default = "fernet_attention" if cfg.attention_heads else "fernet"
    return k.Model(inputs, outputs, name=name or default)
