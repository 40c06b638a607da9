"""`noisegame eval-corruption`: not built yet."""

from noisegame_cli.commands.pending import pending_command

command = pending_command("eval-corruption", "Accuracy under the 19 CIFAR-10-C corruptions at 5 severities.")
