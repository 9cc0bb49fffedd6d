"""The albumentations pipeline used while training, built from `AugmentConfig`."""

from __future__ import annotations

import os

import cv2

from fer.config import AugmentConfig

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no version check over the network

import albumentations as A  # noqa: E402


def build_augmenter(cfg: AugmentConfig, seed: int | None = None) -> A.Compose:
    """Geometry first, then photometric changes, then occlusion: the order faces vary in."""
    t = cfg.translate
    return A.Compose([
        A.HorizontalFlip(p=cfg.hflip),
        A.Affine(scale=cfg.scale, translate_percent=(-t, t), rotate=(-cfg.rotate, cfg.rotate),
                 border_mode=cv2.BORDER_REFLECT_101, p=cfg.affine_p),
        A.RandomBrightnessContrast(brightness_limit=cfg.brightness, contrast_limit=cfg.contrast,
                                   p=cfg.brightness_contrast_p),
        A.OneOf([A.GaussianBlur(blur_limit=(3, 3)), A.GaussNoise(std_range=(0.02, 0.08))],
                p=cfg.blur_noise_p),
        A.CoarseDropout(num_holes_range=cfg.dropout_holes, hole_height_range=cfg.dropout_size,
                        hole_width_range=cfg.dropout_size, fill=0, p=cfg.dropout_p),
    ], seed=seed)
