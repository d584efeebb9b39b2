"""Ports implemented with real libraries. Heavy imports happen inside functions and methods, so
importing an adapter module stays cheap."""
