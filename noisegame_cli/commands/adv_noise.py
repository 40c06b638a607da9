"""`noisegame adv-noise`: not built yet."""

from noisegame_cli.commands.pending import pending_command

command = pending_command("adv-noise", "The Game of Noise (adversarial noise training) and Gaussian-noise training.")
