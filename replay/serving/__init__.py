"""Local Hyperliquids: the server that speaks the exchange's protocol (``/ws``, ``POST /info``,
``POST /exchange``) over a source — the synthetic market (``simulate``) or an archive (``serve``).

Owns sockets, HTTP, faults and the ``simulate``/``serve`` commands; the answers themselves come from
the sources and ``schemas.info``. Nothing below imports it.
"""
