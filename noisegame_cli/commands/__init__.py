"""One module per subcommand; each exposes ``command`` (Click), a ``Config`` dataclass and ``run``.

The group imports a command's module only when that command runs, so ``noisegame --help`` does not
wait for TensorFlow; the one-line summaries for the group's help live here.
"""

COMMANDS = {
    "train-teacher": ("noisegame_cli.commands.train_teacher", "Train a standard classifier (flip + crop augmentation, optional SWA/EMA)."),
    "train-student": ("noisegame_cli.commands.train_student", "Consistency training: a student on noised views learns from labels and a teacher."),
    "adv-noise": ("noisegame_cli.commands.adv_noise", "The Game of Noise (adversarial noise training) and Gaussian-noise training."),
    "fgsm": ("noisegame_cli.commands.fgsm", "FGSM/PGD adversarial examples, accuracy-vs-epsilon curves, adversarial training."),
    "freq-split": ("noisegame_cli.commands.freq_split", "Low/high-frequency split of images: evaluation, training, kernel smoothing."),
    "style-transfer": ("noisegame_cli.commands.style_transfer", "Gatys style transfer through VGG-19, ResNet-50 or a model trained here."),
    "eval-corruption": ("noisegame_cli.commands.eval_corruption", "Accuracy under the 19 CIFAR-10-C corruptions at 5 severities."),
    "report": ("noisegame_cli.commands.report", "Collect the metrics of every run under a folder into tables."),
}
