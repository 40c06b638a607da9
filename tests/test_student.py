"""SelfTrainer: fit/evaluate with paired batches, a frozen teacher, strategies and saving."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from noisegame_cli.models import build_model, load_classifier
from noisegame_cli.training.student import SelfTrainer

SHAPE = (16, 16, 3)
CLASSES = 3


def _paired_dataset(count=24, batch=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, count)
    # Class-dependent brightness so that a tiny network can learn something in a few steps.
    clean = np.clip(labels[:, None, None, None] * 90 + rng.integers(0, 40, (count, *SHAPE)), 0, 255).astype("float32")
    noisy = np.clip(clean + rng.normal(0, 20, clean.shape), 0, 255).astype("float32")
    return tf.data.Dataset.from_tensor_slices(((clean, noisy), labels)).batch(batch), (clean, labels)


def _trainer(**kwargs):
    keras.utils.set_random_seed(0)
    teacher = build_model("tiny_cnn", SHAPE, CLASSES)
    student = build_model("tiny_cnn", SHAPE, CLASSES)
    trainer = SelfTrainer(student, teacher, **kwargs)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-2))
    return trainer


def test_fit_logs_each_part_lowers_the_loss_and_leaves_the_teacher_alone():
    dataset, _ = _paired_dataset()
    trainer = _trainer()
    teacher_before = [w.copy() for w in trainer.teacher.get_weights()]
    student_before = [w.copy() for w in trainer.student.get_weights()]
    history = trainer.fit(dataset, epochs=6, verbose=0).history
    assert {"loss", "ce_loss", "kl_loss", "accuracy"} <= set(history)
    assert history["loss"][-1] < history["loss"][0]
    # With alpha = 0.5 the total is the mean of the two logged parts (all are per-epoch means).
    np.testing.assert_allclose(history["loss"], (np.array(history["ce_loss"]) + history["kl_loss"]) / 2, rtol=1e-4)
    for before, after in zip(teacher_before, trainer.teacher.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert any(not np.array_equal(b, a) for b, a in zip(student_before, trainer.student.get_weights()))


def test_evaluate_accepts_plain_and_paired_batches():
    dataset, (clean, labels) = _paired_dataset()
    trainer = _trainer()
    trainer.fit(dataset, epochs=1, verbose=0)
    paired = trainer.evaluate(dataset, verbose=0, return_dict=True)
    plain = trainer.evaluate(clean, labels, batch_size=8, verbose=0, return_dict=True)
    assert set(paired) == set(plain) == {"loss", "ce_loss", "kl_loss", "accuracy"}
    assert 0.0 <= plain["accuracy"] <= 1.0


def test_alpha_one_is_plain_cross_entropy():
    dataset, _ = _paired_dataset()
    logs = _trainer(alpha=1.0).evaluate(dataset, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(logs["ce_loss"], rel=1e-5)


def test_works_inside_a_strategy_scope_with_callbacks_and_saves_a_plain_student(tmp_path):
    dataset, (clean, _) = _paired_dataset()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        trainer = _trainer()
    log_file = tmp_path / "history.csv"
    trainer.fit(dataset, epochs=1, verbose=0, callbacks=[keras.callbacks.CSVLogger(str(log_file))])
    assert "kl_loss" in log_file.read_text().splitlines()[0]
    path = tmp_path / "model.keras"
    trainer.student.save(path)
    reloaded = load_classifier(path)
    np.testing.assert_allclose(reloaded.predict(clean[:4], verbose=0), trainer.student.predict(clean[:4], verbose=0), atol=1e-5)
