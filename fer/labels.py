"""The one label order every reader, model and output uses, and the datasets' own codes."""

from __future__ import annotations

from fer.errors import FerError

#: The shared label order (FER2013's order). Model outputs, JSON and tables follow it.
LABELS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

#: AffectNet adds contempt; it is kept only on request and then appended as an 8th class.
CONTEMPT = "contempt"

#: Spellings found in dataset folders and CSVs, mapped to the canonical names.
ALIASES: dict[str, str] = {
    "angry": "angry", "anger": "angry", "ang": "angry",
    "disgust": "disgust", "disgusted": "disgust", "dis": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "hap": "happy",
    "sad": "sad", "sadness": "sad",
    "surprise": "surprise", "surprised": "surprise", "sur": "surprise",
    "neutral": "neutral", "neu": "neutral", "calm": "neutral",
    "contempt": CONTEMPT,
}

#: FER2013's `emotion` column (and its numeric class folders): 0 Angry ... 6 Neutral.
FER2013_CODES: dict[int, str] = dict(enumerate(LABELS))

#: AffectNet's `expression` column. 8 None, 9 Uncertain and 10 No-Face are not expressions.
AFFECTNET_CODES: dict[int, str] = {
    0: "neutral", 1: "happy", 2: "sad", 3: "surprise", 4: "fear", 5: "disgust", 6: "angry",
    7: CONTEMPT,
}
AFFECTNET_NON_EXPRESSIONS: dict[int, str] = {8: "none", 9: "uncertain", 10: "no-face"}

#: Presets for folders named by number (`train/0/...`).
NUMERIC_PRESETS: dict[str, dict[int, str]] = {
    "fer2013": FER2013_CODES,
    "affectnet": AFFECTNET_CODES,
}


def canonical(name: str) -> str | None:
    """Canonical label for a spelling, or None when it is not an expression we know."""
    return ALIASES.get(name.strip().lower())


def label_set(include_contempt: bool = False) -> tuple[str, ...]:
    """The classes a model is trained on."""
    return LABELS + ((CONTEMPT,) if include_contempt else ())


def resolve_folder_name(name: str, numeric: dict[int, str] | None) -> str:
    """Canonical label for a class folder name; raises when the folder matches nothing."""
    label = canonical(name)
    if label is None and name.strip().isdigit() and numeric is not None:
        label = numeric.get(int(name))
    if label is None:
        known = ", ".join(sorted(set(ALIASES)))
        hint = "" if numeric is not None else " (numeric folders need --numeric-labels fer2013|affectnet)"
        raise FerError(f"class folder '{name}' matches no known label{hint}; known names: {known}")
    return label


def class_subset(names: str | list[str] | tuple[str, ...], include_contempt: bool = False
                 ) -> tuple[str, ...]:
    """The classes a `--classes` list asks for, in the shared label order (so two runs naming the
    same classes in another order give the same model outputs). Any known spelling is accepted;
    naming contempt counts as asking for it."""
    given = [n for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    chosen: list[str] = []
    for name in given:
        label = canonical(name)
        if label is None:
            raise FerError(f"--classes: '{name.strip()}' is not an expression we know; use some of "
                           f"{', '.join(label_set(True))}")
        if label in chosen:
            raise FerError(f"--classes names {label} twice")
        chosen.append(label)
    if len(chosen) < 2:
        raise FerError("--classes needs at least two classes (e.g. angry,happy,sad,surprise,neutral)")
    full = label_set(include_contempt or CONTEMPT in chosen)
    return tuple(label for label in full if label in chosen)
