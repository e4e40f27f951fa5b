"""Working on an archive as a whole: DuckDB views and ``sql``, ``ls``, ``verify``, ``compact``, ``sync``.

Reads through the reader's archive and storage seam; never imports the server, the simulator or
paper trading.
"""
