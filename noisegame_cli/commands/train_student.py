"""`noisegame train-student`: not built yet."""

from noisegame_cli.commands.pending import pending_command

command = pending_command("train-student", "Consistency training: a student on RandAugment views learns from labels and a teacher.")
