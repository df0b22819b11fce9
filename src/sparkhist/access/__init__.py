"""Who may see what: authentication, the SHS's ACLs per application, TLS.

It sits between ``api`` (which mounts :class:`AccessMiddleware` and gives it the API's
routing rules) and the layers below; it reads ``store`` (the application index and each
attempt's logged ACLs), ``render`` (the SHS's error page) and ``config``.

- :mod:`~sparkhist.access.acls`: the SHS's view decision (``SecurityManager``);
- :mod:`~sparkhist.access.groups`: a user's groups (``spark.user.groups.mapping``);
- :mod:`~sparkhist.access.authn`, :mod:`~sparkhist.access.spnego`: who is asking (trusted
  proxy header, Kerberos SPNEGO);
- :mod:`~sparkhist.access.paths`: which application a request reads;
- :mod:`~sparkhist.access.middleware`: the ASGI middleware enforcing it all;
- :mod:`~sparkhist.access.settings`: the policy from the settings; SHS security settings
  sparkhist cannot honour are refused;
- :mod:`~sparkhist.access.tls`: HTTPS from PEM files or the SHS's key stores.
"""

from sparkhist.access.middleware import AccessMiddleware, AccessPolicy

__all__ = ["AccessMiddleware", "AccessPolicy"]
