"""One parser per face dataset: its own on-disk layout in, `ImageRecord`s out, skips counted."""
