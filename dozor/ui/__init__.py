"""The analyst UI (`dozor serve`): a local, read-only web UI over a `Store`.

Built on the standard library and jinja2 only: `wsgiref` serves it (one thread per
request), jinja2 renders it with autoescaping on. No web framework, no JavaScript and no
remote assets: the pages and their one stylesheet all come from this process, and the
only outside links are the original articles' URLs.

`dozor.ui.app.AnalystUI` is the WSGI application; `dozor.ui.server` binds it.
"""
