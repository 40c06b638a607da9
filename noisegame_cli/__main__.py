"""``python -m noisegame_cli`` runs the ``noisegame`` command."""

from noisegame_cli.cli import main

main()
