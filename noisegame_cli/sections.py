"""The sections of the results page. A command names the one its runs appear in beside its ``Config``
(``section = sections.ADVERSARIAL``), so the report learns every command's place from the commands
themselves; a command that needs a section of its own declares a new ``Section`` in its module.

Sections appear on the page in the order of the commands (``commands.COMMANDS``) that first name them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    anchor: str  # the page's link target: lower case, no spaces
    title: str
    about: str = ""  # a line under the title: how to read the section's tables


NOISE_TRAINING = Section("noise-training", "Noise training: teacher, student, GNT, ANT",
                         "Each training run measures its model beside the teacher it started from (role column).")  # fmt: skip
ADVERSARIAL = Section("adversarial", "Adversarial examples: FGSM and PGD",
                      "Accuracy under attack at each budget ε (in the 0..1 image scale, shown as k/255).")  # fmt: skip
FREQUENCY = Section("frequency", "Frequency: low- and high-pass images, kernel smoothing")
STYLE = Section("style", "Style transfer", "Final losses per feature extractor (lower is closer).")
CORRUPTIONS = Section("corruptions", "Common corruptions",
                      "Accuracy per corruption is the mean over the severities evaluated; mCE and relative mCE are "
                      "against the baseline run each evaluation names.")  # fmt: skip
DENOISER = Section("denoiser", "Denoiser")
BENCHMARK = Section("benchmark", "Benchmark cards", "RobustBench-style cards written by noisegame benchmark.")
OTHER = Section("other", "Other runs")  # runs of a command that names no section (one that no longer exists)
