"""`noisegame freq-split`: not built yet."""

from noisegame_cli.commands.pending import pending_command

command = pending_command("freq-split", "Low/high-frequency split of images: evaluation, training, kernel smoothing.")
