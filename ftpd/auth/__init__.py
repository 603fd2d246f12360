"""Authorizers: who may log in, where their root is, and what they may do."""
