"""Hearth's storage: SQLModel tables, async repositories, the batched writer, migrations.

This package never imports ``bot``: it knows rows, not chat platforms.
"""
