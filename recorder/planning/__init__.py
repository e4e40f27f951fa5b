"""What to record: subscriptions expanded and checked against the per-IP limits, markets chosen from /info."""
