"""The Whoosh engine (embedded, the default): the only package that imports ``whoosh``.

:mod:`.engine` keeps versions on local disk, :mod:`.version` searches one,
:mod:`.build` writes one with :mod:`.writer` (a bulk segment writer on every
core) and :mod:`.codec` (posting blocks as plain arrays); :mod:`.store` reads
a served version with ``pread``; :mod:`.fixes` works around bugs of
whoosh-reloaded 2.7.5.
"""
