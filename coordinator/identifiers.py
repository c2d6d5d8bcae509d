"""Norwegian identifiers with their FHIR systems: person ids, HPR numbers, organisation numbers.

Pure (python-stdnum and the standard library). The check digits come from python-stdnum;
the *kind* of a person id is decided here, because ``stdnum.no.fodselsnummer.is_valid``
accepts D-numbers and H-numbers alike. A number must be of the kind its identifier system
names: a D-number under the fødselsnummer OID is refused.

Kinds of an eleven-digit person id (day ``DD``, month ``MM`` of ``DDMMYYIIIKK``):

* fødselsnummer: ``DD`` 01-31, ``MM`` 01-12;
* D-nummer: ``DD`` + 40;
* H-nummer (the health sector's auxiliary number): ``MM`` + 40 — refused as a person id;
* FH-nummer: first digit 8 or 9 — carries no birth date, refused as a person id;
* synthetic (Skatteetaten's test population, "Tenor"): ``MM`` + 80. Such numbers can never
  belong to a real person; they are accepted only when the caller allows synthetic numbers
  (tests, demo, development), see ``Settings.allow_synthetic_identifiers``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from stdnum.no import fodselsnummer, orgnr

OID_FNR = "urn:oid:2.16.578.1.12.4.1.4.1"
OID_DNR = "urn:oid:2.16.578.1.12.4.1.4.2"
OID_HPR = "urn:oid:2.16.578.1.12.4.1.4.4"
OID_ORGNR = "urn:oid:2.16.578.1.12.4.1.4.101"

PERSON_SYSTEMS = {OID_FNR: "fnr", OID_DNR: "dnr"}
SYNTHETIC_MONTH_OFFSET = 80
H_MONTH_OFFSET = 40
D_DAY_OFFSET = 40


class IdentifierError(ValueError):
    """An identifier is malformed, fails its checksum, or is of the wrong kind.

    ``reason`` is a stable code; the message is a Norwegian sentence for the caller."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class PersonId:
    value: str            # eleven digits
    kind: str             # fnr, dnr
    birth_date: date
    synthetic: bool

    @property
    def system(self) -> str:
        return OID_FNR if self.kind == "fnr" else OID_DNR


def _checksum_ok(digits: str) -> bool:
    return (digits[9] == fodselsnummer.calc_check_digit1(digits[:9])
            and digits[10] == fodselsnummer.calc_check_digit2(digits[:10]))


def person_kind(digits: str) -> tuple[str, bool]:
    """(kind, synthetic) of eleven digits; kind is fnr, dnr, hnr or fhnr."""
    day, month = int(digits[0:2]), int(digits[2:4])
    if digits[0] in "89":
        return "fhnr", False
    synthetic = month > SYNTHETIC_MONTH_OFFSET
    if not synthetic and month > H_MONTH_OFFSET:
        return "hnr", False
    return ("dnr" if day > D_DAY_OFFSET else "fnr"), synthetic


def birth_date_of(digits: str) -> date:
    """The birth date in a fødselsnummer or D-nummer (synthetic ones included).

    Raises: IdentifierError."""
    day, month = int(digits[0:2]), int(digits[2:4])
    if month > SYNTHETIC_MONTH_OFFSET:
        month -= SYNTHETIC_MONTH_OFFSET
    plain = f"{day:02d}{month:02d}{digits[4:]}"
    try:
        born: date = fodselsnummer.get_birth_date(plain)   # D-number days and the century
    except Exception as exc:  # stdnum raises its ValidationError subclasses here
        raise IdentifierError("bad_birth_date",
                              "nummeret inneholder ingen gyldig fødselsdato") from exc
    return born


def parse_person_id(value: str, system: str, *, today: date,
                    allow_synthetic: bool = False) -> PersonId:
    """A fødselsnummer or D-nummer given under ``system`` (one of ``PERSON_SYSTEMS``).

    Raises: IdentifierError (unknown system, format, checksum, kind, date, synthetic)."""
    expected = PERSON_SYSTEMS.get(system)
    if expected is None:
        raise IdentifierError("unknown_system", f"ukjent identifikatorsystem {system!r} for "
                              "person; bruk fødselsnummer- eller D-nummer-OID")
    digits = fodselsnummer.compact(value) if isinstance(value, str) else ""
    if len(digits) != 11 or not digits.isascii() or not digits.isdigit():
        raise IdentifierError("bad_format", "et personnummer har 11 sifre")
    if not _checksum_ok(digits):
        raise IdentifierError("bad_checksum", "kontrollsifrene i personnummeret stemmer ikke")
    kind, synthetic = person_kind(digits)
    if kind in ("hnr", "fhnr"):
        raise IdentifierError(f"{kind}_not_accepted",
                              f"{kind.upper()}-nummer kan ikke brukes som personidentifikator")
    if kind != expected:
        names = {"fnr": "fødselsnummer", "dnr": "D-nummer"}
        raise IdentifierError("kind_mismatch", f"nummeret er et {names[kind]}, men systemet "
                              f"{system} er for {names[expected]}")
    if synthetic and not allow_synthetic:
        raise IdentifierError("synthetic_not_allowed",
                              "syntetiske testnumre er ikke tillatt her")
    born = birth_date_of(digits)
    if born > today:
        raise IdentifierError("born_in_future", "fødselsdatoen i nummeret er fram i tid")
    return PersonId(digits, kind, born, synthetic)


def parse_hpr(value: str) -> str:
    """An HPR number (Helsepersonellregisteret): 4 to 9 digits, no leading zero.

    HPR numbers have no published check digit and python-stdnum has no module for them,
    so only the form is checked. Raises: IdentifierError."""
    if not isinstance(value, str) or not (4 <= len(value) <= 9) or not value.isascii() \
            or not value.isdigit() or value[0] == "0":
        raise IdentifierError("bad_hpr", "et HPR-nummer er 4 til 9 sifre")
    return value


def parse_orgnr(value: str) -> str:
    """A nine-digit organisation number with a valid mod-11 check digit (python-stdnum).

    Raises: IdentifierError."""
    digits = orgnr.compact(value) if isinstance(value, str) else ""
    if len(digits) != 9 or not digits.isascii() or not digits.isdigit():
        raise IdentifierError("bad_orgnr", "et organisasjonsnummer har 9 sifre")
    if not orgnr.is_valid(digits):
        raise IdentifierError("bad_orgnr_checksum",
                              "kontrollsifferet i organisasjonsnummeret stemmer ikke")
    return digits
