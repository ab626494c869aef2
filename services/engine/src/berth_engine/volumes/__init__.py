"""Volumes: the local driver's storage and `docker volume` commands."""
