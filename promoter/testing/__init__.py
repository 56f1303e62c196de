"""Test doubles promoter ships for its own tests and demos (e.g. a local GitHub emulator)."""
