"""The benchmark suite (``search-service bench``): indexing, in-process queries,
HTTP, cold start, hostile input, and peers.

Bounded (every loop stops by count or time) and loopback only. Each figure of
ours is reported next to the same figure of two peers measured in the same run
on the same corpus and queries: ``naive`` (Whoosh with jieba's
``ChineseAnalyzer``) and ``tantivy`` (fed the same jieba search-mode tokens).

:mod:`.run` runs it all and :mod:`.report` writes its tables; :mod:`.jobs` are
the builds, each in a fresh process; :mod:`.measure` times and compares them;
:mod:`.corpus` makes the corpora and queries; :mod:`.queries`, :mod:`.httpload`,
:mod:`.hostile` and :mod:`.devcorpora` are its steps. Nothing is imported here:
a build's process imports only what its job needs.
"""
