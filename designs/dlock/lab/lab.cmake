# (filled in by the lab part)
