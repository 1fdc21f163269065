# (filled in by the checker part)
