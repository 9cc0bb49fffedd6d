"""Errors a user can fix: the CLI prints them as one line, without a traceback."""


class FerError(Exception):
    """A problem with the user's input (path, file format, option) rather than a bug."""


def user_errors(*kinds: type[BaseException]):
    """Decorator for click commands: known user mistakes become one 'Error: ...' line and exit 1;
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
            except KeyboardInterrupt:
                click.echo("\ninterrupted; completed work is kept (training: rerun with --resume)",
                           err=True)
                raise SystemExit(130) from None

        return run

    return wrap
