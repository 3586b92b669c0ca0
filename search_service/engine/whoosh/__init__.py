"""The Whoosh engine (embedded, the default): the only package that imports ``whoosh``.

:mod:`.engine` keeps versions on local disk (:mod:`.layout`), :mod:`.version`
searches one, ranking through :mod:`search_service.engine.bm25` over the
postings :mod:`.postings` and :mod:`.rankfile` read. :mod:`.build` writes one:
:mod:`.parallel` runs :mod:`.writer` (a bulk segment writer) on every core,
holding postings as :mod:`.columns` and writing them with :mod:`.segfiles` and
:mod:`.codec` (posting blocks as plain arrays), with the schema of
:mod:`.schema`. :mod:`.store` reads every version's files with ``pread``;
:mod:`.fixes` works around bugs of whoosh-reloaded 2.7.5.
"""
