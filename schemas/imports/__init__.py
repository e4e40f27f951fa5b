"""Other people's records read as frames: Hyperliquid's published history (L2 snapshots, fills,
trades, asset contexts; line by line or a chunk at a time) and JSON lines from other collectors.

Pure like the rest of ``schemas``: text in, frames and Arrow columns out; reading files is the
recorder's ``imports`` package's job.
"""
