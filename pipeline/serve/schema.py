"""The records' shapes for the OpenAPI page (/docs). Documentation only: responses are the
dicts `FrameResult.to_json()` builds, the very records `fer-detect --json` writes, never
re-serialised through these models."""

from __future__ import annotations

from pydantic import BaseModel, Field


class FaceRecord(BaseModel):
    id: int | None = Field(description="always null for a photo (face ids track video frames)")
    box: list[float] = Field(description="x1, y1, x2, y2 in pixels of the original image",
                             min_length=4, max_length=4)
    score: float | None = Field(description="detector confidence; null for Haar")
    emotion: str | None = Field(description="the most probable label; null when too small")
    probabilities: dict[str, float] | None = Field(
        description="softmax probability per label, in the model's label order; null when too small")
    too_small: bool = Field(description="shorter side under min_face: boxed, not classified")


class PhotoRecord(BaseModel):
    source: str = Field(description="the uploaded file's name ('upload' for a raw body)")
    frame: int | None = Field(description="always null for a photo")
    width: int
    height: int
    probability_kind: str = Field(description="what 'probabilities' are: 'softmax'")
    faces: list[FaceRecord]


class BatchItemError(BaseModel):
    source: str
    error: str
    message: str


class BatchRecord(BaseModel):
    results: list[PhotoRecord | BatchItemError] = Field(
        description="one per image, in the order sent: its record, or why it was refused")
    analysed: int
    failed: int


class ErrorRecord(BaseModel):
    error: str = Field(description="a stable code: empty_body, not_an_image, too_large, ...")
    message: str = Field(description="one line for a person: what was wrong and what to do")
