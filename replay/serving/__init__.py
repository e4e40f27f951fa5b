"""Local Hyperliquids: the server that speaks the exchange's protocol (``/ws``, ``POST /info``) over
the synthetic market (``simulate``) or an archive (``serve``), and the answers each gives."""
