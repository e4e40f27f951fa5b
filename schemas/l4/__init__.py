"""The order-level (L4) book: a node's block files (``node``) and the book they describe (``book``)."""
