"""What becomes of committed parts: the catalog that lists them (``catalog``), the compaction behind
the recorder that merges them (``compactor``), the upload that copies them to a store (``upload``)."""
