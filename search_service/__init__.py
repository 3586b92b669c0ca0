"""中文全文检索: a Chinese full-text search service.

The layout follows the pipeline: :mod:`.text` (normalize, segment, analyze:
the same for indexing and querying) → :mod:`.ingest` (read the corpus, split
it into passages, reindex) → :mod:`.engine` (the seam, and the Whoosh and
OpenSearch engines behind it) → :mod:`.search` (plan, rank, highlight) → :mod:`.web` (the Flask
API, the page, gunicorn). :mod:`.fields` and :mod:`.settings` declare the
fields and the settings once; :mod:`.cli` is the command-line shell and
:mod:`.devtools` holds evaluation, benchmark and load test.
"""

__version__ = "0.1.0"
