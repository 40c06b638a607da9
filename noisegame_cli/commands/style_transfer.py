"""`noisegame style-transfer`: not built yet."""

from noisegame_cli.commands.pending import pending_command

command = pending_command("style-transfer", "Gatys style transfer through VGG-19, ResNet-50 or a model trained here.")
