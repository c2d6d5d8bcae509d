"""Identifiers against python-stdnum, with hypothesis; the synthetic generators' numbers."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.no import fodselsnummer, orgnr

from coordinator.identifiers import (
    OID_DNR,
    OID_FNR,
    IdentifierError,
    parse_hpr,
    parse_orgnr,
    parse_person_id,
    person_kind,
)
from coordinator.testing import synthetic_hpr, synthetic_orgnr, synthetic_person_id

TODAY = date(2027, 1, 4)
births = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)


def plain_form(number: str) -> str:
    """The number with the synthetic month offset removed (the check digits do not match)."""
    return number[:2] + f"{int(number[2:4]) - 80:02d}" + number[4:]


@given(births, st.sampled_from(["fnr", "dnr"]), st.integers(0, 10_000))
def test_generated_person_ids_pass_stdnums_checks_and_are_synthetic(
        born: date, kind: str, seed: int) -> None:
    number = synthetic_person_id(born, kind=kind, seed=seed)
    assert number[9] == fodselsnummer.calc_check_digit1(number[:9])
    assert number[10] == fodselsnummer.calc_check_digit2(number[:10])
    assert fodselsnummer.get_birth_date(plain_form(number)) == born
    assert not fodselsnummer.is_valid(number)       # +80: never a real person's number
    person = parse_person_id(number, OID_FNR if kind == "fnr" else OID_DNR, today=TODAY,
                             allow_synthetic=True)
    assert (person.kind, person.birth_date, person.synthetic) == (kind, born, True)
    with pytest.raises(IdentifierError) as e:
        parse_person_id(number, OID_DNR if kind == "fnr" else OID_FNR, today=TODAY,
                        allow_synthetic=True)
    assert e.value.reason == "kind_mismatch"
    with pytest.raises(IdentifierError) as e:
        parse_person_id(number, OID_FNR if kind == "fnr" else OID_DNR, today=TODAY)
    assert e.value.reason == "synthetic_not_allowed"


@settings(max_examples=300)
@given(st.text(alphabet="0123456789", min_size=11, max_size=11))
def test_real_form_numbers_are_accepted_exactly_when_stdnum_accepts_them(number: str) -> None:
    """Agreement with stdnum on non-synthetic numbers: we add only the kind rules."""
    kind, synthetic = person_kind(number)
    system = OID_DNR if kind == "dnr" else OID_FNR
    try:
        parse_person_id(number, system, today=date.today())  # noqa: DTZ011 - stdnum uses today
        ours = True
    except IdentifierError:
        ours = False
    theirs = fodselsnummer.is_valid(number) and kind in ("fnr", "dnr") and not synthetic
    assert ours == theirs


@given(st.integers(0, 10**9))
def test_generated_orgnr_pass_stdnum_and_are_never_real(seed: int) -> None:
    number = synthetic_orgnr(seed)
    assert orgnr.is_valid(number)
    assert number[0] not in "89"        # Brønnøysund assigns 8xx and 9xx only
    assert parse_orgnr(number) == number


@given(st.text(alphabet="0123456789", min_size=9, max_size=9))
def test_orgnr_agrees_with_stdnum(number: str) -> None:
    try:
        parse_orgnr(number)
        ours = True
    except IdentifierError:
        ours = False
    assert ours == orgnr.is_valid(number)


@given(st.integers(0, 10**9))
def test_generated_hpr_numbers_are_well_formed(seed: int) -> None:
    assert parse_hpr(synthetic_hpr(seed)) == synthetic_hpr(seed)


@pytest.mark.parametrize(("value", "reason"), [
    ("12345", "bad_format"), ("1234567890a", "bad_format"),
    ("81010112345", "bad_checksum"),
])
def test_malformed_person_ids(value: str, reason: str) -> None:
    with pytest.raises(IdentifierError) as e:
        parse_person_id(value, OID_FNR, today=TODAY, allow_synthetic=True)
    assert e.value.reason == reason


def test_h_and_fh_numbers_are_not_person_ids() -> None:
    assert person_kind("01450112345")[0] == "hnr"
    assert person_kind("81010112345")[0] == "fhnr"


@pytest.mark.parametrize("value", ["123", "0123456", "12345678901", "12a4567", ""])
def test_bad_hpr(value: str) -> None:
    with pytest.raises(IdentifierError):
        parse_hpr(value)
