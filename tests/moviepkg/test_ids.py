"""Package ids and the short movie code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moviepkg.ids import (
    CODE_ALPHABET,
    CODE_LENGTH,
    PACKAGE_ID_RE,
    movie_code,
    new_package_id,
    normalize_code,
    split_package_id,
)


def test_station_package_id_shape() -> None:
    when = datetime(2026, 5, 1, 14, 30, 5, tzinfo=timezone(timedelta(hours=3)))
    package_id = new_package_id("st-07", when, nonce="beef")
    assert package_id == "st-07-20260501t113005z-beef"
    assert split_package_id(package_id) == ("st-07", datetime(2026, 5, 1, 11, 30, 5, tzinfo=UTC))


def test_random_nonce_and_limits() -> None:
    when = datetime(2026, 5, 1, tzinfo=UTC)
    ids = {new_package_id("a" * 41, when) for _ in range(50)}
    assert len(ids) > 40
    assert all(PACKAGE_ID_RE.fullmatch(i) and len(i) <= 63 for i in ids)
    with pytest.raises(ValueError, match="station_id"):
        new_package_id("a" * 42, when)
    with pytest.raises(ValueError, match="naive"):
        new_package_id("a", datetime(2026, 5, 1))


def test_split_rejects_ids_not_built_by_a_station() -> None:
    assert split_package_id("holiday-movie") is None
    assert split_package_id("st-20261341t000000z-beef") is None


@given(st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,62}\Z"))
def test_movie_code_is_short_unambiguous_and_deterministic(package_id: str) -> None:
    code = movie_code(package_id)
    assert len(code) == CODE_LENGTH
    assert set(code) <= set(CODE_ALPHABET)
    assert movie_code(package_id) == code
    assert normalize_code(code.lower()) == code
    assert normalize_code(f" {code[:3]}-{code[3:]} ") == code


def test_alphabet_has_no_look_alikes() -> None:
    assert not set("01OILUV") & set(CODE_ALPHABET)


def test_codes_spread_out() -> None:
    codes = {movie_code(f"station-1-20260501t12{m:02d}00z-{m:04x}") for m in range(2000)}
    assert len(codes) == 2000


@pytest.mark.parametrize("typed", ["", "ABC", "ABCDEFG", "AB0DEF", "ABCD!F"])
def test_normalize_rejects_what_cannot_be_a_code(typed: str) -> None:
    assert normalize_code(typed) is None
