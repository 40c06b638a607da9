"""One module per command (or command with modes); each exposes ``command`` (Click), its ``Config``
dataclass(es) and ``run`` function(s). A command never imports another command.

The group imports a command's module only when that command runs, so ``noisegame --help`` does not
wait for TensorFlow; the one-line summaries for the group's help live here.
"""

COMMANDS = {
    "train-teacher": ("noisegame_cli.commands.train_teacher", "Train a standard classifier (flip + crop augmentation, optional SWA/EMA)."),
    "train-student": ("noisegame_cli.commands.train_student", "Consistency training: a student on noised views learns from labels and a teacher."),
    "adv-noise": ("noisegame_cli.commands.adv_noise", "Noise training from a teacher: gnt (Gaussian noise) or ant (the Game of Noise)."),
    "fgsm": ("noisegame_cli.commands.fgsm", "Adversarial examples: eval (FGSM/PGD accuracy vs epsilon) or train (adversarial training)."),
    "freq-split": ("noisegame_cli.commands.freq_split", "Low/high-frequency study: eval, train on L(r)/H(r), smooth first-layer kernels."),
    "style-transfer": ("noisegame_cli.commands.style_transfer", "Gatys style transfer through VGG-19, ResNet-50 or a model trained here."),
    "eval-corruption": ("noisegame_cli.commands.eval_corruption", "Accuracy under the 19 common corruptions at 5 severities (files or generated)."),
    "denoise": ("noisegame_cli.commands.denoise", "The GAN denoiser: train it, evaluate it as a purifier (oblivious and white-box attacks)."),
    "corrupt": ("noisegame_cli.commands.corrupt", "Write a corrupted copy of a dataset (CIFAR-10-C npy files or ImageNet-C folders)."),
    "benchmark": ("noisegame_cli.commands.benchmark", "A robustness card: clean accuracy, AutoAttack (Linf/L2) and corruptions, as RobustBench measures them."),
    "study": ("noisegame_cli.commands.study", "The whole robustness study on the digits data (or CIFAR-10), ending in the results page."),
    "report": ("noisegame_cli.commands.report", "Collect the runs under a folder into a results page and tables."),
}
