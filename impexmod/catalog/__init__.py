"""The catalog: who an entity is, what changed, and the panel's reads and edits of it."""
