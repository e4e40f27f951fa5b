"""Bringing data the recorder did not record: JSON lines of frames, Hyperliquid's published history."""
