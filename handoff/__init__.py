"""Handoffs to departments (issue: handoffs)."""
