"""Errors a user can fix: the CLI prints them as one line, without a traceback."""


class FerError(Exception):
    """A problem with the user's input (path, file format, option) rather than a bug."""


#: what a training command says when the core install (fer-detect with ONNX models) lacks a
#: package of the [train] extra
MISSING_EXTRA = ("{command} needs the Python package '{name}', which the core install leaves out; "
                 "install the training extra: pip install 'fer-detect[train]'")


def user_errors(*kinds: type[BaseException]):
    """Decorator for the training and evaluation commands: known user mistakes become one
    'Error: ...' line and exit 1, as does a package of the [train] extra that is not installed;
    Ctrl-C exits 130 with a hint instead of a traceback."""
    import functools

    import click

    caught = kinds or (FerError,)

    def wrap(fn):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except caught as e:
                raise click.ClickException(str(e)) from None
            except ModuleNotFoundError as e:
                ctx = click.get_current_context(silent=True)
                command = ctx.command_path if ctx else fn.__name__
                raise click.ClickException(MISSING_EXTRA.format(
                    command=command, name=e.name)) from None
            except KeyboardInterrupt:
                click.echo("\ninterrupted; completed work is kept (training: rerun with --resume)",
                           err=True)
                raise SystemExit(130) from None

        return run

    return wrap
