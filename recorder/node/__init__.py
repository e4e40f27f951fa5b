"""Recording a node's L4 files: tailing them as they grow (``tail``), finding where an earlier run
stopped (``resume``), asking the node for snapshots (``snapshot``), and the loop that joins the
streams block by block into the archive (``follow``)."""
