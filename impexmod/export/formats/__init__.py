"""The flat and JSON feed writers: ``csv``, ``xlsx``, ``json`` and ``jsonl`` (docs/formats.md).

Each module holds one writer; ``common`` holds what the flat ones share (options, the header
and values of a row, deletions) and ``objects`` the JSON shape of an entity.
"""
