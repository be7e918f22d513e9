"""Veille's system of record: the Document model, settings and the SQL store."""
