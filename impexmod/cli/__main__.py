"""``python -m impexmod.cli``: the same as the ``impexmod`` command."""

from impexmod.cli import cli

cli()
