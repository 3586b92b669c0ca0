"""The HTTP layer: the Flask app (:mod:`.app`), the search page (:mod:`.pages`),
the one error shape (:mod:`.errors`), the OpenAPI document (:mod:`.openapi`)
and gunicorn (:mod:`.serve`)."""
