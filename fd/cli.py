"""fd-prep, fd-train, fd-eval. The face-detection stage is specified in its own issue; until it
lands these commands say so plainly instead of pretending to work."""

from __future__ import annotations

import click

NOT_BUILT = ("{cmd} is not built yet: the face-detection stage (WIDER FACE/FDDB/LFPW converters, "
             "YOLOv8n training) is still to come; see README.md")


def _not_built(name: str) -> click.Command:
    @click.command(name=name, context_settings={"help_option_names": ["-h", "--help"],
                                                "ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def cmd(args):
        raise click.ClickException(NOT_BUILT.format(cmd=name))

    cmd.help = f"{name} (not built yet)."
    return cmd


prep_cmd = _not_built("fd-prep")
train_cmd = _not_built("fd-train")
eval_cmd = _not_built("fd-eval")
