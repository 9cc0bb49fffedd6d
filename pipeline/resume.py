"""`fer-detect --resume`: which inputs an earlier, interrupted run already wrote to its --json file.

A run that resumes appends to the file line by line, and writes each input's records (one line
for a photo, one per frame for a video) in one go once the input is finished, so an input named in
the file is a finished one. The one exception is a run killed while writing: the file then ends in
a partial line, whose input may have lost lines too, so that line and the lines of its input are
cut off and the input is analysed again.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import ConfigError

#: A record's first key (FrameResult.to_json puts "source" first), read from a torn line.
_SOURCE_PREFIX = re.compile(r'^\{"source": ("(?:[^"\\]|\\.)*")')


@dataclass
class Resumed:
    """What an earlier run left in the --json file."""

    done: set[str] = field(default_factory=set)  # sources with records, as absolute paths
    records: int = 0  # whole records kept
    cut: int = 0  # lines cut off the end (a torn line and the records of its input)

    def is_done(self, path: str) -> bool:
        return os.path.abspath(path) in self.done


def _source_of(line: bytes) -> str | None:
    """The source a record (whole or torn) names, or None when too little of it is there."""
    try:
        return json.loads(line)["source"]
    except (ValueError, KeyError, TypeError):
        pass
    match = _SOURCE_PREFIX.match(line.decode("utf-8", "replace"))
    return json.loads(match.group(1)) if match else None


def repair_and_read(path: Path) -> Resumed:
    """Cut a torn last line (and the lines of its input) off `path`, then list the sources of the
    records left. A missing file is an empty run; a line that is not a record is refused, because
    this is then not a file fer-detect wrote."""
    state = Resumed()
    if not path.exists():
        return state
    data = path.read_bytes()
    lines = data.split(b"\n")
    torn = lines.pop()  # b"" when the file ends in a newline, as a finished line does
    keep = len(lines)
    if torn:
        source = _source_of(torn)
        if source is None and lines:  # cut within its first bytes: redo the last input to be sure
            source = _source_of(lines[-1])
        while keep and _source_of(lines[keep - 1]) == source:
            keep -= 1
        state.cut = len(lines) - keep + 1
        with open(path, "r+b") as f:
            f.truncate(sum(len(line) + 1 for line in lines[:keep]))
    for number, line in enumerate(lines[:keep], start=1):
        if not line.strip():
            continue
        source = _source_of(line)
        if source is None:
            raise ConfigError(f"--resume: line {number} of {path} is not a fer-detect record; "
                              "give the --json file of the run to resume")
        state.done.add(os.path.abspath(source))
        state.records += 1
    return state
