"""The albumentations pipeline used while training, built from `AugmentConfig`."""

from __future__ import annotations

import os

import cv2
import numpy as np

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
        real_photo_degradations(cfg.degrade_p),
    ], seed=seed)


def real_photo_degradations(p: float) -> A.OneOf:
    """Random strengths of `fer.degrade`'s kinds: a face 12-29 px high blown up to 48, JPEG
    quality 15-60, blur, a dim room with sensor noise."""
    return A.OneOf([
        A.Downscale(scale_range=(0.25, 0.6),
                    interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR}),
        A.ImageCompression(quality_range=(15, 60)),
        A.GaussianBlur(blur_limit=0, sigma_limit=(0.6, 1.6)),
        A.Sequential([A.RandomGamma(gamma_limit=(120, 200), p=1),
                      A.RandomBrightnessContrast(brightness_limit=(-0.3, -0.05),
                                                 contrast_limit=(-0.3, 0.0), p=1),
                      A.GaussNoise(std_range=(0.01, 0.03), p=1)]),
    ], p=p)


def batch_seed(seed: int, epoch: int, batch: int) -> int:
    """The augmentation seed of one batch: a batch is the same pixels wherever and whenever it is
    made (a feeder thread, a worker process, a resumed run)."""
    return int(np.random.SeedSequence([seed, epoch, batch]).generate_state(1)[0])


def augment_batch(augmenter: A.Compose, images: np.ndarray, seed: int) -> np.ndarray:
    """`images` (N x H x W x C) augmented from `seed`; the augmenter must not be shared between
    threads while this runs."""
    augmenter.set_random_seed(seed)
    return np.stack([augmenter(image=im)["image"].reshape(im.shape) for im in images])
