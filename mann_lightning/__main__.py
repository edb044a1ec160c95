"""``python -m mann_lightning`` runs the ``mann`` CLI."""

from .cli import main

if __name__ == "__main__":
    main()
