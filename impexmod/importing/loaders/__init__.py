"""Per-entity loaders: each plans its entries (match, mode, links: no writes), then applies them
with bulk statements. The engine runs them in dependency order over one chunk."""
