"""Sphinx fixes for this book, loaded through ``_config.yml`` (``sphinx: local_extensions``).

One page script twice
---------------------
Sphinx 7.4 writes a body-only ``<script>`` that an extension registers after the HTML builder has
started twice into every page. sphinx-thebe registers ``const THEBE_JS_URL = ...`` (and
sphinx-togglebutton ``var togglebuttonSelector = ...``) in ``env-before-read-docs``:
``app.add_js_file(None, body=...)`` gives the builder ``_JavaScript(None, body=...)``, and
``StandaloneHTMLBuilder.prepare_writing`` re-adds the registry's scripts as
``_JavaScript('', body=...)``. The two compare unequal (``None != ''``), so both are written, and the
second ``const`` declaration throws ``SyntaxError: Identifier 'THEBE_JS_URL' has already been
declared`` on every page. Here each page's script list keeps the first of such duplicates.
"""


def _key(script):
    return (getattr(script, "filename", script) or "", getattr(script, "priority", None),
            tuple(sorted(getattr(script, "attributes", {}).items())))


def dedupe_script_files(app, pagename, templatename, context, doctree):
    """Drop later copies of a script that differ only by a ``None`` / ``''`` file name."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        if _key(script) not in seen:
            seen.add(_key(script))
            unique.append(script)
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", dedupe_script_files, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
