"""evaluate: the honest protocol (subsets, scores)."""
