"""``python -m continual``: the ``mann-continual`` command."""

from .cli import main

main()
