"""One file per pilot per version: ``<pilot>_v<N>.py`` exposing ``DEFINITION``.

Citations such as ``004:976-982`` point into ``shared/seeds/`` through the domain brief
(``shared/domain/README.md``), which is where each rule is explained in English.
"""
