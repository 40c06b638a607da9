"""The per-point random numbers, the order-fixed row sums and the canonical batch sizes the attacks rely on."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from noisegame_cli import keyed_random
from noisegame_cli.attacks.common import padded_index, row_sum
from noisegame_cli.errors import UserError


def keys_of(indices, seed=(0, 1)):
    return keyed_random.fold(keyed_random.seed_key(seed), tf.constant(indices, tf.int64))


def test_a_rows_draws_depend_on_its_key_alone():
    everyone = keyed_random.uniform(keys_of(np.arange(50)), [4, 3]).numpy()
    some = keyed_random.uniform(keys_of([41, 7, 7]), [4, 3]).numpy()
    np.testing.assert_array_equal(some, everyone[[41, 7, 7]])
    assert len(np.unique(everyone.reshape(50, -1), axis=0)) == 50  # distinct keys, distinct draws
    other_seed = keyed_random.uniform(keys_of(np.arange(50), seed=(0, 2)), [4, 3]).numpy()
    assert not np.isin(other_seed, everyone).any()


def test_draws_follow_their_distributions():
    keys = keys_of(np.arange(400))
    uniform = keyed_random.uniform(keys, [250], minval=-1.0, maxval=1.0).numpy().ravel()
    normal = keyed_random.normal(keys, [250]).numpy().ravel()
    assert -1.0 <= uniform.min() and uniform.max() < 1.0
    assert stats.kstest(uniform, stats.uniform(loc=-1, scale=2).cdf).pvalue > 1e-3
    assert stats.kstest(normal, stats.norm.cdf).pvalue > 1e-3


def test_compiled_and_plain_graphs_draw_the_same_numbers():
    keys = keys_of(np.arange(32))
    plain = tf.function(lambda k: keyed_random.normal(k, [5]))(keys)
    compiled = tf.function(lambda k: keyed_random.bits(k, [5]), jit_compile=True)(keys)
    np.testing.assert_array_equal(plain.numpy(), keyed_random.normal(keys, [5]).numpy())
    np.testing.assert_array_equal(compiled.numpy(), keyed_random.bits(keys, [5]).numpy())


def test_seeds_must_be_non_negative():
    with pytest.raises(UserError, match="non-negative"):
        keyed_random.seed_key([-1, 3])


def test_row_sums_are_the_same_for_a_row_in_any_batch_compiled_or_not():
    values = np.random.default_rng(0).normal(size=(520, 3072)).astype(np.float32)
    compiled = tf.function(row_sum, jit_compile=True)
    everyone = compiled(tf.constant(values)).numpy()
    np.testing.assert_allclose(everyone, values.astype(np.float64).sum(axis=1), rtol=1e-5, atol=1e-3)
    for count in (16, 48, 400):
        np.testing.assert_array_equal(compiled(tf.constant(values[:count])).numpy(), everyone[:count])
    np.testing.assert_array_equal(row_sum(tf.constant(values[:16])).numpy(), everyone[:16])


@pytest.mark.parametrize("count, size", [(1, 16), (16, 16), (17, 32), (64, 64), (65, 80), (100, 112), (129, 160), (360, 384)])
def test_calls_run_on_multiples_of_16_rows_four_sizes_per_doubling(count, size):
    index = np.arange(100, 100 + count)
    padded = padded_index(index)
    assert len(padded) == size
    np.testing.assert_array_equal(padded[:count], index)
    assert (padded[count:] == index[-1]).all()
