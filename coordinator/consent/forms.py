"""Versioned consent forms per pilot: the exact text the person was shown, and the scopes
a grant on that form may cover. A grant names its form version; its scopes must lie
within the form's, and the record keeps the SHA-256 of the form text (pure, no I/O).

The texts are synthetic; each pilot replaces them with its approved wording by adding a
new version (never by editing one that has been used).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from coordinator.consent.model import CATEGORIES, METHODS, PARTIES, PURPOSES

PILOTS = ("bjerke", "fredrikstad", "kristiansand", "nesodden", "tromso", "ha", "lillestrom",
          "stovner", "ringsaker")


@dataclass(frozen=True)
class ConsentForm:
    pilot: str
    version: str
    title: str
    text: str
    purposes: frozenset[str]
    categories: frozenset[str]
    parties: frozenset[str]
    methods: frozenset[str] = METHODS

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


_V1_TEXT = (
    "Samtykke til samarbeid mellom helsetjenesten og Nav ({pilot}, versjon 1).\n"
    "Jeg samtykker i at tjenestene som er krysset av, kan utveksle opplysninger om meg for "
    "å koordinere oppfølgingen min: kartlegging, arbeidssituasjon, mestringsplan, "
    "oppsummeringer av samtaler, resultatmål og møtereferater, og kontakt med arbeidsgiver "
    "når jeg ønsker det. Samtykket gjelder til det trekkes tilbake eller utløper. Jeg kan "
    "trekke det tilbake helt eller delvis når som helst. Tilbaketrekking gjelder fra "
    "neste forespørsel; det som allerede er delt, står i tilgangsloggen min."
)
_V2_TEXT = _V1_TEXT.replace("versjon 1", "versjon 2") + (
    "\nJeg samtykker også i at avidentifiserte opplysninger brukes i følgeforskning og "
    "evaluering av piloten."
)
_DIALOGUE = PURPOSES - {"research"}


def _forms() -> dict[tuple[str, str], ConsentForm]:
    forms: dict[tuple[str, str], ConsentForm] = {}
    for pilot in PILOTS:
        forms[(pilot, "v1")] = ConsentForm(pilot, "v1", "Samtykke til samarbeid",
                                           _V1_TEXT.format(pilot=pilot), _DIALOGUE,
                                           CATEGORIES, PARTIES)
        forms[(pilot, "v2")] = ConsentForm(pilot, "v2", "Samtykke til samarbeid og "
                                           "følgeforskning", _V2_TEXT.format(pilot=pilot),
                                           PURPOSES, CATEGORIES, PARTIES)
    return forms


FORMS: Mapping[tuple[str, str], ConsentForm] = _forms()


def form(pilot: str, version: str) -> ConsentForm | None:
    return FORMS.get((pilot, version))


def forms_for(pilot: str) -> list[ConsentForm]:
    return [f for (p, _v), f in sorted(FORMS.items()) if p == pilot]
