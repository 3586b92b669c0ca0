"""中文全文检索: a Chinese full-text search service.

The pipeline, one module per step: :mod:`corpus` (read) → :mod:`passages`
(split) → :mod:`normalize` → :mod:`segment` → :mod:`analyze` → :mod:`index`
→ :mod:`search` (with :mod:`query` and :mod:`highlight`); :mod:`app` and
:mod:`cli` are the shells.
"""

__version__ = "0.1.0"
