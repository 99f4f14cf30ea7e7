"""Segments (Pinpoint dimensional segments): definitions, versions and their validation; membership comes later."""
