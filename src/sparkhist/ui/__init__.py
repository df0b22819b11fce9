"""The web UI: the SHS's pages at the SHS's URLs, rendered on the server.

It sits between ``api`` (which mounts its routes and hands it the API's records) and
``observability``; it reads ``store`` (the application index), ``render`` (templates,
formatting) and nothing above it. Assets are in ``static/``, shipped in the package.
"""

from sparkhist.ui.pages import UiContext, log_directory_labels, ui_routes

__all__ = ["UiContext", "log_directory_labels", "ui_routes"]
