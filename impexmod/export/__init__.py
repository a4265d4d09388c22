"""The export pipeline: read entities by key range, build native elements, write as we go."""
