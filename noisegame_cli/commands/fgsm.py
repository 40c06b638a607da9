"""`noisegame fgsm`: not built yet."""

from noisegame_cli.commands.pending import pending_command

command = pending_command("fgsm", "FGSM/PGD adversarial examples, accuracy-vs-epsilon curves, adversarial training.")
