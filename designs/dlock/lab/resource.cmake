# (filled in by the resource part)
