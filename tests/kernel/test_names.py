import random

import pytest

from aegis_kernel.names import check_handle, generate_handle


def test_generated_handles_alliterate_and_are_unique():
    taken = set()
    rng = random.Random(7)
    for _ in range(300):
        handle = generate_handle(taken, rng)
        adjective, scientist = handle.split("-")[:2]
        assert adjective[0] == scientist[0]
        assert handle not in taken
        check_handle(handle)
        taken.add(handle)


@pytest.mark.parametrize("bad", ["Brisk", "a b", "-x", "x--y", "1abc", "", "a" * 41])
def test_bad_handles_say_what_is_allowed(bad):
    with pytest.raises(ValueError, match="lowercase letters, digits and single dashes"):
        check_handle(bad)
