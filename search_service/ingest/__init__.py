"""Ingesting a corpus: read it (:mod:`.corpus`), split it into passages
(:mod:`.passages`), make each passage's record (:mod:`.records`) and have the
engine write, check and switch to a new version (:mod:`.reindex`)."""
