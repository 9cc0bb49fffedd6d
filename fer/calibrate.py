"""Temperature scaling and expected calibration error, in numpy only (the inference path imports
this module, and it must not pull in TensorFlow, PyTorch or SciPy).

The model's last layer is a softmax, and with flip TTA two softmax outputs are averaged, so the
"logits" scaled here are the logs of the averaged probabilities: softmax(log(p) / T) is p raised
to 1/T and renormalised. T = 1 gives p back, and for any T > 0 the order of the classes (so top-1
accuracy) is unchanged; T > 1 softens an over-confident model."""

from __future__ import annotations

from typing import Any

import numpy as np

#: Probabilities are clipped here before the log, so a float32 zero gives a finite logit.
TINY = 1e-12
#: The temperatures searched: far beyond any sane model on either side.
T_RANGE = (0.05, 20.0)
ECE_BINS = 15


def logits_from_probs(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probs, np.float64), TINY, 1.0))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Calibrated probabilities, same dtype as given; T = 1 returns the input untouched."""
    if temperature == 1.0 or len(probs) == 0:
        return probs
    return softmax(logits_from_probs(probs) / temperature).astype(probs.dtype)


def nll(logits: np.ndarray, targets: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true class under softmax(logits / T)."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float((log_norm - z[np.arange(len(z)), targets]).mean())


def fit_temperature(logits: np.ndarray, targets: np.ndarray, tol: float = 1e-5) -> float:
    """The T minimising the NLL, by golden-section search on log T.

    NLL is convex in 1/T (a log-sum-exp minus a linear term), so it has one minimum along log T
    and golden-section search finds it without derivatives or SciPy."""
    if len(targets) == 0:
        raise ValueError("cannot fit a temperature on no samples")
    lo, hi = np.log(T_RANGE[0]), np.log(T_RANGE[1])
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = nll(logits, targets, np.exp(a)), nll(logits, targets, np.exp(b))
    while hi - lo > tol:
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = nll(logits, targets, np.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = nll(logits, targets, np.exp(b))
    return float(np.exp((lo + hi) / 2.0))


def reliability_bins(probs: np.ndarray, targets: np.ndarray, bins: int = ECE_BINS
                     ) -> dict[str, np.ndarray]:
    """Per equal-width confidence bin on [0, 1]: sample count, mean confidence and accuracy of
    the top-1 prediction (NaN where a bin is empty)."""
    confidence = probs.max(axis=1).astype(np.float64)
    correct = (probs.argmax(axis=1) == targets).astype(np.float64)
    # bin i holds (i/bins, (i+1)/bins]; a confidence of exactly 0 joins the first bin
    which = np.clip(np.ceil(confidence * bins).astype(int) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, confidence, minlength=bins) / count
        acc = np.bincount(which, correct, minlength=bins) / count
    return {"count": count, "confidence": conf, "accuracy": acc,
            "edges": np.linspace(0.0, 1.0, bins + 1)}


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, bins: int = ECE_BINS
                               ) -> float:
    """ECE: the sample-weighted mean of |accuracy - confidence| over the confidence bins."""
    if len(targets) == 0:
        return 0.0
    r = reliability_bins(probs, targets, bins)
    filled = r["count"] > 0
    gaps = np.abs(r["accuracy"][filled] - r["confidence"][filled])
    return float((gaps * r["count"][filled]).sum() / len(targets))


def calibration_report(raw: np.ndarray, targets: np.ndarray, temperature: float
                       ) -> dict[str, Any]:
    """ECE and NLL of the raw probabilities and of the same ones scaled by `temperature`."""
    logits = logits_from_probs(raw)
    scaled = apply_temperature(raw, temperature)
    return {"temperature": temperature, "bins": ECE_BINS,
            "ece_uncalibrated": expected_calibration_error(raw, targets),
            "ece": expected_calibration_error(scaled, targets),
            "nll_uncalibrated": nll(logits, targets), "nll": nll(logits, targets, temperature)}
