"""One module per subcommand; each exposes ``command`` (Click), a ``Config`` dataclass and ``run``."""

from noisegame_cli.commands import (
    adv_noise,
    eval_corruption,
    fgsm,
    freq_split,
    report,
    style_transfer,
    train_student,
    train_teacher,
)

COMMANDS = (
    train_teacher.command,
    train_student.command,
    adv_noise.command,
    fgsm.command,
    freq_split.command,
    style_transfer.command,
    eval_corruption.command,
    report.command,
)
