"""The synthetic market: coins that tick deterministically for a seed, the streams they show, the
shared timeline and the ``/info`` answers read from the same ticks.

Pure model, no sockets, files or clocks (wall time is an argument); it never imports the server,
the paper exchange or the archive reader.
"""
