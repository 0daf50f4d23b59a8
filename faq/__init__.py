"""The FAQ knowledge base (issue: FAQ)."""
